"""Who holds a credential: a person or a service (plain data, no I/O)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

#: "person via service" fits the 320 characters that records keep: 254 + 5 + 60.
MAX_EMAIL = 254
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}")
SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{2,59}")


def is_email(text: str) -> bool:
    """A plausible e-mail address of at most `MAX_EMAIL` printable characters."""
    return len(text) <= MAX_EMAIL and text.isprintable() and _EMAIL.fullmatch(text) is not None


class PrincipalKind(enum.Enum):
    PERSON = "PERSON"
    SERVICE = "SERVICE"


@dataclass(frozen=True)
class Principal:
    """Who holds the credential of a call: a person (e-mail) or a service (name).

    `acting_for` is the e-mail a service principal sent in "x-user-email" (honoured only from
    services); `key_id` is the id of the API key used ("" for this process's own credential).
    """

    kind: PrincipalKind
    id: str
    key_id: str = ""
    acting_for: str = ""

    @property
    def display(self) -> str:
        """How records name the caller: "ada@example.com", "orchestrator", or
        "ada@example.com via orchestrator"."""
        return f"{self.acting_for} via {self.id}" if self.acting_for else self.id
