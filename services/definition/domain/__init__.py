"""The definition service's domain: entities and pure rules, no I/O and no proto types."""
