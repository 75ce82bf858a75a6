"""Shared domain model: the segment definition, as plain dataclasses."""
