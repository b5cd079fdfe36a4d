"""Interlock on a SASL_SSL listener with SCRAM-SHA-512, set up only by the documented variables.

One Apache Kafka broker for the module, with a SASL_SSL listener whose certificate is signed by
a CA this module makes (the keystore is PEM: a PKCS#8 key and the certificate chain; Kafka 4.3
takes an unencrypted key without ``ssl.key.password``). With the right ``INTERLOCK_KAFKA__*``
variables the CLI, the confluent-kafka clients of the stages, the CDC stage (``interlock cdc``)
and the Faust worker (aiokafka) work; with a wrong password, or a CA that did not sign the
broker's certificate, the CLI, the CDC stage and the worker stop within seconds and say which of
the two it is, instead of retrying until a timeout.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from aiokafka.conn import create_conn
from confluent_kafka.admin import NewTopic
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connectors.cdc.transforms import canonical_id
from contracts import OrderEvent, decode
from interlock.apache_kafka import KafkaBroker, Listener
from interlock.broker import free_port
from interlock.kafka import list_topics, make_admin, make_consumer, make_producer, produce
from interlock.settings import Settings, load_settings
from processors.faust_fixes import CLOSE_WAIT_S, install_bounded_close
from processors.topic_names import ProcessorTopics
from tests.conftest import consume_n, frozen
from tests.connectors.cdc.conftest import debezium
from tests.processors.conftest import ROOT, ProcessorsEnv, Worker, all_topics, create_topics
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration

MECHANISM = "SCRAM-SHA-512"
USER = "interlock"
PASSWORD = "interlock-secret"


@dataclass(frozen=True)
class Pki:
    """The files of the module's TLS setup."""

    ca: Path
    """The CA that signed the broker's certificate (PEM)."""
    untrusted_ca: Path
    """A CA that signed nothing the broker has (PEM)."""
    broker_keystore: Path
    """The broker's PKCS#8 key and certificate chain, one PEM file."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None = None,
    issuer_key: rsa.RSAPrivateKey | None = None,
) -> x509.Certificate:
    """A CA certificate (no issuer: self-signed), or a loopback server one signed by ``issuer``."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        loopback = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(
            x509.SubjectAlternativeName(loopback), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            ),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(directory: Path) -> Pki:
    """A CA, a broker certificate it signed for 127.0.0.1, and an unrelated CA."""
    ca_key = rsa.generate_private_key(65537, 2048)
    ca = _certificate("interlock test CA", ca_key)
    other_key = rsa.generate_private_key(65537, 2048)
    broker_key = rsa.generate_private_key(65537, 2048)
    broker = _certificate("localhost", broker_key, ca, ca_key)
    pki = Pki(directory / "ca.pem", directory / "untrusted-ca.pem", directory / "broker.pem")
    pki.ca.write_bytes(_pem(ca))
    pki.untrusted_ca.write_bytes(_pem(_certificate("some other CA", other_key)))
    key = broker_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pki.broker_keystore.write_bytes(key + _pem(broker) + _pem(ca))
    return pki


@dataclass(frozen=True)
class SecureKafka:
    """The broker's SASL_SSL listener and the variables a deployment sets to use it."""

    bootstrap: str
    pki: Pki
    pid: int
    """The broker's process (a test may freeze it)."""

    def env(self, **overrides: str) -> dict[str, str]:
        """The documented ``INTERLOCK_KAFKA__*`` variables, with ``overrides`` replacing some."""
        return {
            "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "INTERLOCK_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "INTERLOCK_KAFKA__SASL_MECHANISM": MECHANISM,
            "INTERLOCK_KAFKA__SASL_USERNAME": USER,
            "INTERLOCK_KAFKA__SASL_PASSWORD": PASSWORD,
            "INTERLOCK_KAFKA__SSL_CA_LOCATION": str(self.pki.ca),
            **overrides,
        }


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """A broker whose SECURE listener takes SASL_SSL (SCRAM-SHA-512) only."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    port = free_port()
    secure = Listener(
        "SECURE",
        "SASL_SSL",
        port,
        {
            "listener.name.secure.sasl.enabled.mechanisms": MECHANISM,
            f"listener.name.secure.{MECHANISM.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.secure.ssl.keystore.type": "PEM",
            "listener.name.secure.ssl.keystore.location": str(pki.broker_keystore),
        },
    )
    with KafkaBroker(listeners=(secure,), scram_users=((MECHANISM, USER, PASSWORD),)) as broker:
        assert broker.pid is not None
        yield SecureKafka(f"127.0.0.1:{port}", pki, broker.pid)


@pytest.fixture
def secure_settings(secure_kafka: SecureKafka, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings loaded from the documented variables, as every Interlock command loads them."""
    for name, value in secure_kafka.env().items():
        monkeypatch.setenv(name, value)
    return load_settings(_env_file=None)


@dataclass(frozen=True)
class Run:
    """A finished CLI command."""

    returncode: int
    output: str
    seconds: float

    def said(self) -> str:
        """Interlock's own error line (librdkafka's log lines aside)."""
        return "\n".join(line for line in self.output.splitlines() if line.startswith("interlock:"))


def deployment_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment with exactly the given Kafka variables, as a deployment has."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INTERLOCK_KAFKA__") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    return {**inherited, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **env}


def interlock(env: dict[str, str], *args: str, cwd: Path) -> Run:
    """Run ``interlock *args`` with exactly the given Kafka variables, as a deployment would."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "interlock.cli", *args],
        env=deployment_env(env),
        cwd=cwd,  # no stray .env file
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout + done.stderr, time.monotonic() - started)


def _catalog(directory: Path, prefix: str) -> Path:
    path = directory / "topics.yaml"
    topics = [
        {"name": f"{prefix}.orders", "partitions": 3, "retry_tiers": 1},
        {"name": f"{prefix}.state", "partitions": 1, "cleanup_policy": "compact"},
    ]
    path.write_text(yaml.safe_dump({"defaults": {"dead_letter": True}, "topics": topics}))
    return path


@pytest.fixture
def secure_proc_env(secure_settings: Settings, tmp_path: Path) -> Iterator[ProcessorsEnv]:
    """The processors' topics under a fresh prefix, made over SASL_SSL; workers to start."""
    tag = uuid.uuid4().hex[:10]
    topics = ProcessorTopics(f"s{tag}.")
    create_topics(make_admin(secure_settings), all_topics(topics))
    env = ProcessorsEnv(
        secure_settings, topics, f"app-{tag}", tmp_path, make_producer(secure_settings)
    )
    yield env
    for worker in env.workers:
        worker.stop(signal.SIGKILL, 5)


@pytest.fixture
def start_cdc(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """``start_cdc(env, topic)``: ``interlock cdc`` on change ``topic``, its own group and port."""
    started: list[Worker] = []

    def start(env: dict[str, str], topic: str) -> Worker:
        port = free_port()
        log = tmp_path / f"cdc-{len(started)}.log"
        stage_env = {
            "INTERLOCK_CDC__TOPICS": json.dumps([topic]),
            "INTERLOCK_CDC__GROUP_ID": f"cdc-{uuid.uuid4().hex[:12]}",
            "INTERLOCK_METRICS__PORT": str(port),
            **env,
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "interlock.cli", "cdc"],
                env=deployment_env(stage_env),
                cwd=tmp_path,  # no stray .env file
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(Worker(process, port, log))
        return started[-1]

    yield start
    for stage in started:
        stage.stop(signal.SIGKILL, 5)


# What a refused start must say: ours, then librdkafka's cause.
REFUSALS = {
    "wrong-password": ("Kafka authentication failed", "invalid credentials"),
    "untrusted-ca": ("TLS connection to Kafka failed", "certificate verify failed"),
}


def refused_env(secure_kafka: SecureKafka, refusal: str) -> dict[str, str]:
    if refusal == "wrong-password":
        return secure_kafka.env(INTERLOCK_KAFKA__SASL_PASSWORD="not-the-password")
    return secure_kafka.env(INTERLOCK_KAFKA__SSL_CA_LOCATION=str(secure_kafka.pki.untrusted_ca))


def test_cli_applies_the_catalog_over_sasl_ssl(
    secure_kafka: SecureKafka, secure_settings: Settings, tmp_path: Path
) -> None:
    prefix = f"sec{uuid.uuid4().hex[:8]}"
    catalog = str(_catalog(tmp_path, prefix))

    applied = interlock(secure_kafka.env(), "topics", "apply", "--catalog", catalog, cwd=tmp_path)
    assert applied.returncode == 0, applied.output
    assert "created 5 topic(s)" in applied.output

    topics = list_topics(make_admin(secure_settings), 30).topics
    assert len(topics[f"{prefix}.orders"].partitions) == 3
    assert {f"retry.{prefix}.orders.1", f"dlq.{prefix}.orders", f"dlq.{prefix}.state"} <= set(
        topics
    )
    listed = interlock(secure_kafka.env(), "topics", "list", "--catalog", catalog, cwd=tmp_path)
    assert listed.returncode == 0, listed.output  # configs described over SASL_SSL: no drift


def _consume_one(settings: Settings, topic: str) -> list[object]:
    """One record of ``topic``, read through the project's consumer factory."""
    consumer = make_consumer(settings, f"group-{uuid.uuid4().hex[:12]}")
    try:
        consumer.subscribe([topic])
        return consume_n(consumer, 1)
    finally:
        consumer.close()


def test_stage_clients_produce_and_consume_over_sasl_ssl(secure_settings: Settings) -> None:
    topic = f"secure.{uuid.uuid4().hex[:12]}"
    admin = make_admin(secure_settings)
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(timeout=30)
    producer = make_producer(secure_settings)
    produce(producer, topic, b"order placed", b"acc-1")
    assert producer.flush(30) == 0

    received = _consume_one(secure_settings, topic)
    assert [(m.key(), m.value()) for m in received] == [(b"acc-1", b"order placed")]  # type: ignore[attr-defined]


def test_worker_turns_a_quote_into_an_order_over_sasl_ssl(
    secure_kafka: SecureKafka, secure_proc_env: ProcessorsEnv
) -> None:
    t = secure_proc_env.topics
    secure_proc_env.send(t.account, account_event("acc-1"))
    secure_proc_env.send(t.quote, quote_event("q-1", "acc-1"))

    worker = secure_proc_env.start_worker(**secure_kafka.env())
    assert worker.wait_metric("interlock_assigned_partitions", 1) >= 1, worker.output()
    commands = secure_proc_env.wait_for(t.create_order, lambda events: len(events) >= 1)
    assert [c.payload.quote_id for c in commands if isinstance(c, OrderEvent)] == ["q-1"], (
        worker.output()
    )
    assert worker.stop() == 0, worker.output()


def test_a_worker_connection_closes_when_the_broker_does_not_answer_its_tls_close(
    secure_kafka: SecureKafka,
) -> None:
    """A TLS connection's close waits for the peer to end it (Python waits up to 30 s). A
    worker's stop on a loaded machine waited there, in aiokafka's client close, past its
    shutdown timeout after it had committed and left its group. A broker that does not answer
    (frozen here) leaves a worker's connection closed within ``CLOSE_WAIT_S`` anyway."""
    install_bounded_close()  # create_app installs it in every worker
    host, port = secure_kafka.bootstrap.rsplit(":", 1)

    async def close_with_the_broker_frozen() -> float:
        conn = await create_conn(
            host,
            int(port),
            ssl_context=ssl.create_default_context(cafile=secure_kafka.pki.ca),
            security_protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            sasl_plain_username=USER,
            sasl_plain_password=PASSWORD,
        )
        with frozen(secure_kafka.pid):
            started = time.monotonic()
            await asyncio.wait_for(conn.close(), 20)
            return time.monotonic() - started

    waited = asyncio.run(close_with_the_broker_frozen())
    # Most closes wait for the broker and are aborted at CLOSE_WAIT_S; one that fails at once
    # on its own (seen once in a loaded run: 1 ms) is as good for the worker's stop.
    assert waited < CLOSE_WAIT_S + 5


@pytest.mark.parametrize("refusal", REFUSALS)
def test_cli_refused_access_exits_at_once_saying_why(
    secure_kafka: SecureKafka, refusal: str, tmp_path: Path
) -> None:
    ours, cause = REFUSALS[refusal]
    catalog = str(_catalog(tmp_path, f"sec{uuid.uuid4().hex[:8]}"))

    done = interlock(
        refused_env(secure_kafka, refusal), "topics", "apply", "--catalog", catalog, cwd=tmp_path
    )

    assert done.returncode == 2, done.output
    assert done.seconds < 30, done.output
    assert ours in done.said(), done.output
    assert cause in done.said(), done.output
    assert "Traceback" not in done.output


@pytest.mark.parametrize("refusal", REFUSALS)
def test_worker_refused_access_exits_at_once_saying_why(
    secure_kafka: SecureKafka, secure_proc_env: ProcessorsEnv, refusal: str
) -> None:
    ours, cause = REFUSALS[refusal]
    started = time.monotonic()

    worker = secure_proc_env.start_worker(**refused_env(secure_kafka, refusal))
    code = worker.process.wait(timeout=60)

    assert time.monotonic() - started < 60
    output = worker.log.read_text(errors="replace")
    assert code != 0, output
    said = [line for line in output.splitlines() if line.startswith("interlock worker:")]
    assert len(said) == 1, output
    assert ours in said[0], output
    assert cause in said[0], output
    assert "Traceback" not in output


def test_cdc_stage_maps_a_change_over_sasl_ssl(
    secure_kafka: SecureKafka, secure_settings: Settings, start_cdc: Callable[..., Worker]
) -> None:
    tag = uuid.uuid4().hex[:10]
    # the ERP mappings name the canonical topic; on this module's broker only this test uses it
    changes, accounts = f"raw.erp.customers.{tag}", "canonical.account.v1"
    admin = make_admin(secure_settings)
    for future in admin.create_topics([NewTopic(changes, 1, 1), NewTopic(accounts, 1, 1)]).values():
        future.result(timeout=30)
    stage = start_cdc(secure_kafka.env(), changes)
    assert stage.wait_metric("interlock_assigned_partitions", 1) >= 1, stage.output()

    customer = {"customer_number": f"C-{tag}", "name": "Acme GmbH", "currency": "EUR"}
    producer = make_producer(secure_settings)
    change = json.dumps(debezium("c", "customers", None, customer)).encode()
    produce(producer, changes, change, customer["customer_number"].encode())
    assert producer.flush(30) == 0
    received = _consume_one(secure_settings, accounts)

    assert len(received) == 1, stage.output()
    event = decode(received[0].value())  # type: ignore[attr-defined]
    assert event.event_type == "AccountCreated"
    assert event.payload.account_id == canonical_id("account", "erp", f"C-{tag}")
    assert stage.stop() == 0, stage.output()


@pytest.mark.parametrize("refusal", REFUSALS)
def test_cdc_stage_refused_access_exits_at_once_saying_why(
    secure_kafka: SecureKafka, start_cdc: Callable[..., Worker], refusal: str
) -> None:
    ours, cause = REFUSALS[refusal]
    started = time.monotonic()

    stage = start_cdc(refused_env(secure_kafka, refusal), f"raw.erp.customers.{uuid.uuid4().hex}")
    code = stage.process.wait(timeout=60)

    assert time.monotonic() - started < 30, stage.output()
    output = stage.log.read_text(errors="replace")
    assert code == 2, output
    said = [line for line in output.splitlines() if line.startswith("interlock cdc:")]
    assert len(said) == 1, output
    assert ours in said[0], output
    assert cause in said[0], output
    assert "Traceback" not in output
