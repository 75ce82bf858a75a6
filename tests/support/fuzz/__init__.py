"""Fuzzing every RPC of the four services (docs/robustness.md): request strategies built from
the message descriptors (`strategies`), sending and judging (`calls`), and the fuzzed
project (`seed`). Message strategies are in `messages`."""

from .calls import Finding, Outcome, check_outcome, invoke, run_cases
from .messages import DOOMED_PROJECT, PROJECT, SEGMENT_IDS, all_methods, method_path
from .seed import seed_project
from .strategies import (
    TEMPLATES,
    Case,
    byte_cases,
    draw,
    exact_cases,
    nested_cases,
    nested_node,
    template_cases,
    valid_cases,
)

__all__ = [
    "DOOMED_PROJECT",
    "PROJECT",
    "SEGMENT_IDS",
    "TEMPLATES",
    "Case",
    "Finding",
    "Outcome",
    "all_methods",
    "byte_cases",
    "check_outcome",
    "draw",
    "exact_cases",
    "invoke",
    "method_path",
    "nested_cases",
    "nested_node",
    "run_cases",
    "seed_project",
    "template_cases",
    "valid_cases",
]
