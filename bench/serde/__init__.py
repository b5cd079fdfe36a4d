"""Serde benchmark: Interlock's event encode/decode beside raw fastavro, in the same run."""
