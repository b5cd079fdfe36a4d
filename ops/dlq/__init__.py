"""Dead-letter tooling behind ``interlock dlq``: list, show, stats, replay, purge.

Pure logic (filters, selection, stats, replay planning) is importable without a broker:
:mod:`ops.dlq.model`, :mod:`ops.dlq.replay`; Kafka reading is in :mod:`ops.dlq.store`.
"""

from ops.dlq.model import DeadLetter, DeadLetterFilter, parse_time, select, topic_stats
from ops.dlq.replay import ReplayItem, ReplayRejectedError, TokenBucket, plan_replay, send_replay

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "ReplayItem",
    "ReplayRejectedError",
    "TokenBucket",
    "parse_time",
    "plan_replay",
    "select",
    "send_replay",
    "topic_stats",
]
