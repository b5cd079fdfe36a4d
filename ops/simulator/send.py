"""``interlock send``: hand one piece of work to a running stack, as the CRM and the ERP would.

``send customer --example`` writes an ERP customer (a Debezium change on the CDC topic, as the
ERP database would produce it) and posts the matching CRM company and contacts as signed
Standard Webhooks; ``send quote --example`` posts a deal, its lines and its acceptance for that
customer. ``send quote --file BODY.json`` signs and posts a body of your own. The secret, the
receiver's URL and the broker come from the running ``interlock up`` (its state file).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from interlock.settings import Settings
from interlock.stackfile import StackState, attach, read_stack, stack_path
from ops.simulator.actions import Action, ChangeAction, WebhookAction
from ops.simulator.conventions import cdc_topic, crm_quote_id
from ops.simulator.scenario import Scenario
from ops.simulator.wire import debezium_envelope, debezium_key, render_body, sign_request

__all__ = ["send_app"]

send_app = typer.Typer(
    help="Send one piece of work to the running stack, as the CRM and the ERP would.",
    no_args_is_help=True,
)
console = Console()

ExampleOpt = Annotated[bool, typer.Option("--example", help="Send the built-in example.")]
SeedOpt = Annotated[int, typer.Option(help="Another seed: another customer, deal and quote.")]


def _stack() -> StackState:
    state = read_stack()
    if state is None:
        console.print(
            f"[red]No running `interlock up` found[/] ({stack_path()}): start it in this "
            "directory first; `send` uses its broker, receiver and webhook secret."
        )
        raise typer.Exit(2)
    if not state.standard_secret or not state.standard_source:
        console.print("[red]The running stack has no Standard Webhooks secret to sign with.[/]")
        raise typer.Exit(2)
    return state


def _settings() -> Settings:
    from interlock.settings import load_settings

    return attach(load_settings(), say=lambda _line: None)


def _post(client: httpx.Client, state: StackState, action: WebhookAction, body: bytes) -> int:
    assert state.standard_secret is not None
    assert state.standard_source is not None
    request = sign_request(
        action,
        "standard",
        body,
        base_url=state.webhooks_url,
        now_ms=int(time.time() * 1000),
        secret=state.standard_secret,
        source=state.standard_source,
    )
    response = client.post(request.url, content=request.body, headers=request.headers)
    answer = response.text.strip()[:120]
    colour = "green" if response.is_success else "red"
    console.print(
        f"webhook {request.headers['webhook-id']} → [{colour}]{response.status_code}[/] {answer}"
    )
    return response.status_code


def _send(state: StackState, actions: list[Action]) -> bool:
    """Deliver ``actions`` in order; True when every one was accepted."""
    from interlock.kafka import make_producer

    settings = _settings()
    producer = None
    ok = True
    with httpx.Client(timeout=10.0) as client:
        for action in actions:
            if isinstance(action, WebhookAction):
                body = render_body(action, "standard", int(time.time() * 1000))
                if body is not None:
                    ok = _post(client, state, action, body) < 300 and ok
            elif isinstance(action, ChangeAction):
                producer = producer or make_producer(settings)
                topic = cdc_topic(action.table, settings.cdc.raw_topic_prefix)
                producer.produce(
                    topic,
                    debezium_envelope(action, int(time.time() * 1000)),
                    debezium_key(action),
                )
                console.print(f"ERP change {action.table} {action.op} {action.key} → {topic}")
    if producer is not None and producer.flush(30) > 0:
        console.print("[red]ERP changes not delivered within 30 s[/]")
        ok = False
    return ok


def _example(seed: int) -> tuple[Scenario, list[Action], list[Action]]:
    scenario = Scenario(seed, vendor="acme")
    customer, quote = scenario.first_handoff()
    return scenario, customer, quote


@send_app.command("customer")
def send_customer(example: ExampleOpt = False, seed: SeedOpt = 1) -> None:
    """An ERP customer (CDC change) and its CRM company and contacts (signed webhooks)."""
    if not example:
        raise typer.BadParameter("only --example is built in; see docs for your own payloads")
    state = _stack()
    _, customer, _ = _example(seed)
    if not _send(state, customer):
        raise typer.Exit(1)
    console.print("sent: the worker links the CRM company to the ERP customer")


@send_app.command("quote")
def send_quote(
    example: ExampleOpt = False,
    seed: SeedOpt = 1,
    file: Annotated[
        Path | None,
        typer.Option(help="A Standard Webhooks body (JSON) of your own to sign and post."),
    ] = None,
) -> None:
    """An accepted CRM quote (deal, lines, acceptance) for the example customer, signed."""
    state = _stack()
    if file is not None:
        action = WebhookAction(f"file-{int(time.time() * 1000)}", ())
        with httpx.Client(timeout=10.0) as client:
            status = _post(client, state, action, file.read_bytes())
        raise typer.Exit(0 if status < 300 else 1)
    if not example:
        raise typer.BadParameter("give --example or --file BODY.json")
    _, _, quote = _example(seed)
    deal = next(
        str(e["objectId"])
        for a in quote
        if isinstance(a, WebhookAction)
        for e in a.events
        if e.get("subscriptionType") == "deal.creation"
    )
    if not _send(state, quote):
        raise typer.Exit(1)
    console.print(
        f"sent deal {deal} (canonical quote {crm_quote_id(deal, 'acme')}); "
        f"follow it: interlock trace {deal}"
    )
