"""Shared runtime of every Segments service: configuration, logging, errors, gRPC bootstrap."""
