"""``interlock console``: serve the exception desk's web console; manage its users.

``interlock console`` alone serves it (the case store reads ``review.cases`` in a thread,
decisions go to ``review.decisions``); ``add-user``, ``hash-password`` and ``token`` manage the
users file. Settings come from the composition root (``interlock.cli``), which passes its
loader.
"""

from __future__ import annotations

import logging
import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from interlock.commandline import ignore_signals_after_uvicorn, require_kafka
from interlock.settings import Settings

__all__ = ["DEFAULT_USERS_FILE", "bootstrap_admin", "make_console_app", "serve_console"]

log = logging.getLogger(__name__)
DEFAULT_USERS_FILE = Path(".interlock/console-users.yaml")

FileOpt = Annotated[
    Path | None,
    typer.Option("--file", help="Users file (default: console.users_file, else .interlock/...)."),
]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        typer.echo("a password needs at least 8 characters", err=True)
        raise typer.Exit(2)
    return password


def bootstrap_admin(settings: Settings, password_file: Path) -> None:
    """With no user at all, an ``admin`` with a random password, written to ``password_file``
    (mode 0600): how ``interlock up`` gives a fresh stack a first sign-in."""
    from ops.review.users import add_user, load_users

    if len(load_users(settings.console)):
        return
    password = secrets.token_urlsafe(12)
    path = Path(settings.console.users_file or DEFAULT_USERS_FILE)
    add_user(path, "admin", role="admin", teams=[], password=password)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.touch(mode=0o600)
    password_file.write_text(f"{password}\n")
    log.warning("console: no users yet; created admin, password in %s", password_file)


def serve_console(settings: Settings, host: str, port: int) -> None:
    """Run the console until SIGINT/SIGTERM."""
    import uvicorn

    from interlock.kafka import make_producer
    from interlock.metrics import new_registry, serve_metrics
    from ops.review.console.app import ConsoleState, create_app
    from ops.review.store import CaseStore, DecisionSender, review_topics
    from ops.review.users import load_users

    config = settings.console
    users = load_users(config)
    if not len(users):
        log.warning("console: no users; add one with `interlock console add-user`")
    cases_topic, decisions_topic = review_topics(settings)
    timeout_ms = int(config.delivery_timeout_s * 1000)
    dead = threading.Event()
    server: uvicorn.Server | None = None

    def store_died() -> None:  # the process exits 1, so that a supervisor starts it again
        dead.set()
        if server is not None:
            server.should_exit = True

    store = CaseStore(
        settings.kafka.librdkafka(),
        cases_topic,
        poll_s=config.refresh_s,
        on_dead=store_died,
        closed_kept=config.closed_cases_kept,
    ).start()
    sender = DecisionSender(
        make_producer(settings, **{"message.timeout.ms": timeout_ms, "linger.ms": 0}),
        decisions_topic,
        config.delivery_timeout_s,
    )
    secret = config.secret_key.get_secret_value() if config.secret_key else secrets.token_hex(32)
    app = create_app(ConsoleState(store, sender, users), config, secret)
    metrics = serve_metrics(new_registry(), settings.metrics.host, settings.metrics.port)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    )
    ignore_signals_after_uvicorn()
    try:
        if not dead.is_set():
            server.run()
    finally:
        store.stop()
        sender.close()
        metrics.stop()
    if dead.is_set():
        typer.echo(f"interlock console cannot go on: {store.problem}", err=True)
        raise typer.Exit(1)


def make_console_app(load: Callable[[], Settings]) -> typer.Typer:
    """The ``console`` typer app; ``load`` returns the Settings (called once per command)."""
    app = typer.Typer(
        help="The exception desk's web console (no sub-command: serve it); its users.",
        invoke_without_command=True,
    )

    @app.callback()
    def console(
        ctx: typer.Context,
        host: Annotated[str | None, typer.Option(help="Interface (default: settings).")] = None,
        port: Annotated[int | None, typer.Option(help="Port (default: settings, 8090).")] = None,
        first_admin: Annotated[
            Path | None,
            typer.Option(
                help="With no users configured: create admin with a random password, "
                "written to this file (interlock up does)."
            ),
        ] = None,
    ) -> None:
        """Serve the console: the queue, the case pages and the decision buttons."""
        if ctx.invoked_subcommand is not None:
            return
        settings = require_kafka(load())
        if first_admin is not None:
            bootstrap_admin(settings, first_admin)
        serve_console(
            settings,
            host or settings.console.host,
            settings.console.port if port is None else port,
        )

    @app.command("add-user")
    def add_user_command(
        name: Annotated[str, typer.Argument(help="User name (shown on every decision).")],
        role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "operator",
        team: Annotated[
            list[str] | None, typer.Option(help="A team whose cases the user decides (repeat).")
        ] = None,
        file: FileOpt = None,
        password_stdin: StdinOpt = False,
    ) -> None:
        """Add a user (or change one) in the users file; asks for the password."""
        from ops.review.users import add_user

        if role not in ("viewer", "operator", "admin"):
            typer.echo("--role is viewer, operator or admin", err=True)
            raise typer.Exit(2)
        if not name.strip() or len(name) > 100:
            typer.echo("a user name is 1 to 100 characters", err=True)
            raise typer.Exit(2)
        path = file or Path(load().console.users_file or DEFAULT_USERS_FILE)
        password = _password(password_stdin)
        add_user(path, name.strip(), role=role, teams=team or [], password=password)  # type: ignore[arg-type]
        typer.echo(f"{name} ({role}) saved in {path}")

    @app.command("hash-password")
    def hash_password_command(password_stdin: StdinOpt = False) -> None:
        """Print the Argon2 hash of a password, for users given in settings."""
        from ops.review.users import hash_password

        typer.echo(hash_password(_password(password_stdin)))

    @app.command("token")
    def token_command(
        name: Annotated[str, typer.Argument(help="A user of the users file.")],
        file: FileOpt = None,
    ) -> None:
        """Give a user a new API token (Authorization: Bearer); shown once, only its hash kept."""
        from ops.review.users import add_user, new_token, read_users_file

        path = file or Path(load().console.users_file or DEFAULT_USERS_FILE)
        held = read_users_file(path).get(name)
        if held is None:
            typer.echo(f"no user {name!r} in {path}", err=True)
            raise typer.Exit(1)
        token = new_token()
        add_user(path, name, role=held.role, teams=held.teams, token=token)
        typer.echo(token)

    return app
