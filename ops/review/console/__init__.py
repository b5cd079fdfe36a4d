"""The exception desk's web console: server-rendered pages over the case store (no JS)."""
