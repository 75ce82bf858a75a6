"""Adapters of the definition service: the SQL store (PostgreSQL or SQLite) and migrations."""
