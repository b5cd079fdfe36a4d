"""Pure domain logic of the processors: no Kafka, no I/O, no clocks (time is passed in)."""
