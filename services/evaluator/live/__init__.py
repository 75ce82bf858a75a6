"""The live engine: matching ingested events against live segments, durable timers and
day checks, and delivery of entries (use cases over the live store, ClickHouse and the
definition service)."""
