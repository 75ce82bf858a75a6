"""RE2 regular expressions of URL-match triggers: the one place they are compiled, for the
definition service's validation and the evaluator's live matching alike (RE2: linear time,
no back-references or look-arounds)."""

from __future__ import annotations

from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern is the caller's error, reported to them


class PatternError(ValueError):
    """The pattern is not a valid RE2 regular expression."""


def compile_re2(pattern: str) -> Any:
    """The compiled pattern (`.search(text)` finds it anywhere in `text`)."""
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise PatternError(text) from exc
