"""Every environment variable the configuration reads is in the README's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from libs.common.config import Config

README = Path(__file__).resolve().parents[2] / "README.md"


class _Recording(dict[str, str]):
    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def test_every_variable_read_is_documented() -> None:
    env = _Recording()
    Config.from_env(env)
    text = README.read_text()
    missing = sorted(key for key in env.read if f"`{key}`" not in text)
    assert env.read and missing == [], f"add to the README's configuration table: {missing}"
