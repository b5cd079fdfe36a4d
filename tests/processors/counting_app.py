"""A Faust app for the restart test: counts events per key in a table, emits each new count."""

from __future__ import annotations

import sys

from interlock.settings import Settings
from processors.app import create_app, run_worker


def main(bootstrap: str, source: str, sink: str, app_id: str) -> None:
    settings = Settings().with_bootstrap(bootstrap)
    settings.processors.session_timeout_s = 6.0
    app = create_app(settings, app_id=app_id, topic_partitions=2)
    source_topic = app.topic(source, key_type=str, value_type=bytes, value_serializer="raw")
    sink_topic = app.topic(sink, key_type=str, value_type=str, value_serializer="raw")
    counts = app.Table("counts", default=int, key_type=str, value_type=int, partitions=2)

    @app.agent(source_topic)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for key, _value in stream.items():
            counts[key] += 1
            await sink_topic.send(key=key, value=str(counts[key]))

    run_worker(app)


if __name__ == "__main__":
    main(*sys.argv[1:5])
