#!/usr/bin/env bash
# Install the Debian packages the tests need, only when missing:
#   prometheus (prometheus + promtool) for the alert-rule tests and the dashboard e2e test,
#   postgresql-<major>-wal2json for the CDC tests (the PostgreSQL server itself is expected).
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
for dir in /usr/lib/postgresql/*/; do
  [ -d "$dir" ] || continue
  major=$(basename "$dir")
  [ -f "$dir/lib/wal2json.so" ] || need+=("postgresql-${major}-wal2json")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=
if [ "$(id -u)" != "0" ]; then
  SUDO=sudo
fi
echo "installing ${need[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
