"""A Faust app for the restart test: counts events per key in a table, emits each new count."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from interlock.settings import Settings
from processors.app import create_app, run_worker


def main(bootstrap: str, source: str, sink: str, app_id: str) -> None:
    settings = Settings().with_bootstrap(bootstrap)
    settings.processors.session_timeout_s = 6.0
    # the app's own table directory: a RocksDB table of another run of this app must not be
    # taken for this one's (Faust names table files by table name, not by app)
    settings.processors.data_dir = str(Path(tempfile.gettempdir()) / "interlock-counting" / app_id)
    app = create_app(settings, app_id=app_id, topic_partitions=2)
    source_topic = app.topic(source, key_type=str, value_type=bytes, value_serializer="raw")
    sink_topic = app.topic(sink, key_type=str, value_type=str, value_serializer="raw")
    # value: [count, offset of the last counted event]; skipping offsets already counted makes
    # a redelivery after the restart harmless, so the count is exact, not at-least-once.
    counts = app.Table("counts", default=lambda: [0, -1], key_type=str, partitions=2)

    @app.agent(source_topic)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            key = event.key
            offset = event.message.offset
            current, last = counts[key]
            if offset <= last:
                continue
            counts[key] = [current + 1, offset]
            await sink_topic.send(key=key, value=str(current + 1))

    run_worker(app)


if __name__ == "__main__":
    main(*sys.argv[1:5])
