"""Fixtures of the operations tests (metrics, traces, the command-line client): the process's
chDB engine and its HTTP server, shared with the evaluator tests (one chDB path per process)."""

from tests.evaluator.conftest import chdb_engine, chdb_http

__all__ = ["chdb_engine", "chdb_http"]
