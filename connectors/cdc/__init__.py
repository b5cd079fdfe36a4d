"""CDC adapter: Debezium change envelopes -> canonical events, and a built-in Postgres source.

The declarative mapping engine (``spec``, ``transforms``, ``mapper``) is generic: it maps any
row-shaped record to a canonical event from YAML, and other connectors may reuse it.
"""

from connectors.cdc.envelope import ChangeEvent, EnvelopeDecoder
from connectors.cdc.mapper import (
    CdcMapper,
    MappedEvent,
    MappingError,
    TruncateError,
    UnknownTableError,
)
from connectors.cdc.spec import DEFAULT_MAPPINGS_DIR, MappingSpec, load_mapping_dir
from connectors.cdc.transforms import canonical_id

__all__ = [
    "DEFAULT_MAPPINGS_DIR",
    "CdcMapper",
    "ChangeEvent",
    "EnvelopeDecoder",
    "MappedEvent",
    "MappingError",
    "MappingSpec",
    "TruncateError",
    "UnknownTableError",
    "canonical_id",
    "load_mapping_dir",
]
