#!/usr/bin/env bash
# Install the Debian packages the tests and the embedded stack need, only when missing:
#   postgresql and postgresql-<major>-wal2json for the CDC tests (throwaway servers in temp dirs),
#   prometheus (prometheus + promtool) for the alert-rule tests and the dashboard e2e test,
#   a JDK >= 17 and Maven for the embedded Apache Kafka broker (its jars come from Maven Central),
#   chromium and chromium-driver for the console's browser tests (Selenium drives them),
#   valgrind, whose callgrind counts the in-process benchmark's instructions (tested too).
# With the argument `bench`, only what the benchmarks need instead (`make bench-tools`):
#   wrk, the HTTP load generator of bench.webhooks (the tests do not need it), and valgrind.
set -euo pipefail
need=()

test_tools() {
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
  pg_bins=(/usr/lib/postgresql/*/bin/initdb)
  if [ ! -x "${pg_bins[0]}" ]; then
    need+=(postgresql postgresql-15-wal2json)
  else
    for dir in /usr/lib/postgresql/*/; do
      [ -d "$dir" ] || continue
      major=$(basename "$dir")
      [ -f "$dir/lib/wal2json.so" ] || need+=("postgresql-${major}-wal2json")
    done
  fi
  java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1 || true)
  if [ -z "${java_major}" ] || [ "${java_major}" -lt 17 ]; then
    need+=(openjdk-17-jdk-headless)
  fi
  command -v mvn >/dev/null 2>&1 || need+=(maven)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
}

bench_tools() {
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
}

case "${1:-test}" in
  test) test_tools ;;
  bench) bench_tools ;;
  *) echo "usage: $0 [test|bench]" >&2; exit 2 ;;
esac
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
