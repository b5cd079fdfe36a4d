"""Settings: prefix, nesting, the conventional bootstrap variable, librdkafka mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.broker import embedded_run_settings
from interlock.settings import Settings, load_settings

pytestmark = pytest.mark.unit


def test_no_bootstrap_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("INTERLOCK_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    assert load_settings(_env_file=None).embedded


def test_conventional_variable_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092")
    settings = load_settings(_env_file=None)
    assert settings.kafka.bootstrap_servers == "kafka-1:9092"
    assert not settings.embedded


def test_prefixed_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "conventional:9092")
    monkeypatch.setenv("INTERLOCK_KAFKA__BOOTSTRAP_SERVERS", "prefixed:9092")
    assert load_settings(_env_file=None).kafka.bootstrap_servers == "prefixed:9092"


def test_security_options_map_to_librdkafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_KAFKA__BOOTSTRAP_SERVERS", "k:9093")
    monkeypatch.setenv("INTERLOCK_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("INTERLOCK_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("INTERLOCK_KAFKA__SASL_USERNAME", "svc")
    monkeypatch.setenv("INTERLOCK_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("INTERLOCK_KAFKA__EXTRA", '{"socket.keepalive.enable": "true"}')
    settings = load_settings(_env_file=None)
    conf = settings.kafka.librdkafka()
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "svc"
    assert conf["sasl.password"] == "s3cret"
    assert conf["socket.keepalive.enable"] == "true"
    # the secret never shows in the settings' repr
    assert "s3cret" not in repr(settings)


def test_invalid_value_is_rejected_with_the_field_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_TOPICS__PARTITIONS", "0")
    with pytest.raises(ValueError, match="partitions"):
        Settings(_env_file=None)


def test_consumers_fetch_wait_comes_from_the_setting_unless_extra_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from interlock.kafka import consumer_config

    monkeypatch.setenv("INTERLOCK_KAFKA__BOOTSTRAP_SERVERS", "k:9092")
    conf = consumer_config(load_settings(_env_file=None), "g")
    # a fetch waits for a batch, briefly: on Tansu, which answers only when the wait ends, longer
    assert (conf["fetch.wait.max.ms"], conf["fetch.min.bytes"]) == (25, 16384)
    monkeypatch.setenv("INTERLOCK_KAFKA__BROKER_KIND", "tansu")
    assert consumer_config(load_settings(_env_file=None), "g")["fetch.wait.max.ms"] == 100
    monkeypatch.setenv("INTERLOCK_KAFKA__FETCH_MIN_BYTES", "1")
    assert consumer_config(load_settings(_env_file=None), "g")["fetch.min.bytes"] == 1
    monkeypatch.setenv("INTERLOCK_KAFKA__FETCH_WAIT_MAX_MS", "250")
    settings = load_settings(_env_file=None)
    assert consumer_config(settings, "g")["fetch.wait.max.ms"] == 250
    # a caller's override wins over the setting; so does librdkafka's own name in extra
    assert consumer_config(settings, "g", **{"fetch.wait.max.ms": 10})["fetch.wait.max.ms"] == 10
    monkeypatch.setenv("INTERLOCK_KAFKA__EXTRA", '{"fetch.wait.max.ms": "40"}')
    assert consumer_config(load_settings(_env_file=None), "g")["fetch.wait.max.ms"] == "40"
    monkeypatch.setenv("INTERLOCK_KAFKA__FETCH_WAIT_MAX_MS", "0")
    with pytest.raises(ValueError, match="fetch_wait_max_ms"):
        load_settings(_env_file=None)


def test_embedded_runs_get_one_partition_per_worker_unless_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INTERLOCK_TOPICS__PARTITIONS", raising=False)
    defaults = load_settings()
    assert defaults.topics.partitions == 3
    assert defaults.with_embedded_topics(1).topics.partitions == 1
    assert defaults.with_embedded_topics(2).topics.partitions == 2
    assert defaults.topics.partitions == 3  # a copy: the loaded settings are unchanged
    monkeypatch.setenv("INTERLOCK_TOPICS__PARTITIONS", "6")
    assert load_settings().with_embedded_topics(1).topics.partitions == 6


def test_embedded_runs_keep_worker_state_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_PROCESSORS__DATA_DIR", "/var/lib/interlock")
    loaded = load_settings(_env_file=None)
    assert loaded.with_embedded_state().processors.data_dir == "/var/lib/interlock/embedded"
    assert loaded.processors.data_dir == "/var/lib/interlock"  # a copy


def test_embedded_runs_keep_tables_in_memory_unless_a_store_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INTERLOCK_PROCESSORS__STORE", raising=False)
    defaults = load_settings(_env_file=None)
    assert defaults.processors.store == "rocksdb://"  # the worker's default
    assert defaults.with_embedded_state().processors.store == "memory://"
    assert defaults.processors.store == "rocksdb://"  # a copy
    monkeypatch.setenv("INTERLOCK_PROCESSORS__STORE", "rocksdb://")
    assert load_settings(_env_file=None).with_embedded_state().processors.store == "rocksdb://"


def test_a_run_on_the_embedded_broker_starts_with_empty_worker_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("INTERLOCK_TOPICS__PARTITIONS", raising=False)
    monkeypatch.setenv("INTERLOCK_PROCESSORS__DATA_DIR", str(tmp_path))
    stale = tmp_path / "embedded" / "v1" / "tables" / "seen-0.db"
    stale.mkdir(parents=True)
    kept = tmp_path / "worker-elsewhere"
    kept.mkdir()
    run = embedded_run_settings(load_settings(_env_file=None), "127.0.0.1:9", workers=2)
    assert run.kafka.bootstrap_servers == "127.0.0.1:9"
    assert run.topics.partitions == 2
    assert run.processors.data_dir == str(tmp_path / "embedded")
    assert not (tmp_path / "embedded").exists()
    assert kept.is_dir()  # only the embedded run's own directory is emptied


def test_producers_linger_as_configured_unless_their_stage_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from interlock.kafka import producer_config

    monkeypatch.setenv("INTERLOCK_KAFKA__BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.delenv("INTERLOCK_KAFKA__LINGER_MS", raising=False)
    assert producer_config(load_settings())["linger.ms"] == 25
    monkeypatch.setenv("INTERLOCK_KAFKA__LINGER_MS", "0")
    settings = load_settings()
    assert producer_config(settings)["linger.ms"] == 0
    assert producer_config(settings, **{"linger.ms": 10})["linger.ms"] == 10
