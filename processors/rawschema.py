"""The worker's topics as the broker's bytes: a Faust schema that decodes nothing.

The agents read each record's key, value and headers from ``event.message``
(:func:`processors.agents.raw_record`) and decode the value themselves (Avro,
:mod:`contracts.serde`). Faust's default :class:`faust.Schema` still sends every key and value
through the app's serializer registry, the ``raw`` codec and a check for a Faust model to
rebuild, and looks the event class up in the app's settings, once per record, only to hand back
the same bytes. :class:`RawSchema` makes the event of a record from the message's own key and
value, with the event class looked up once, when the topic compiles its decoder. The event is
the one Faust made before: the same class, key, value, headers and message (a key or value
the broker sent as null stays ``None``; the ``raw`` codec passed bytes through as they were).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust

__all__ = ["RawSchema"]


class RawSchema(faust.Schema):
    """Keys and values as bytes (Faust's ``raw`` serializers), decoded without the registry."""

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(
        self,
        app: Any,
        *,
        on_key_decode_error: Any = None,
        on_value_decode_error: Any = None,
        default_propagate: bool = False,
    ) -> Callable[..., Awaitable[Any]]:
        """The topic's decoder: the event of a message, its key and value as they came.

        Nothing is decoded, so nothing can fail to decode: the error callbacks are never called.
        """
        event_class = app.conf.Event

        async def decode(message: Any, *, propagate: bool = default_propagate) -> Any:
            return event_class(app, message.key, message.value, message.headers, message)

        return decode
