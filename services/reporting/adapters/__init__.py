"""Adapters of the reporting service: its run log (SQL), its daily figures (ClickHouse) and
its peers (definition service, evaluator)."""
