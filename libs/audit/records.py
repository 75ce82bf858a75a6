"""What an audit record holds, and the writer every server uses: each record is logged (one
JSON line, event "audit") and stored before the call's answer leaves."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from libs.common.errors import DomainError
from libs.common.logging import get_logger

if TYPE_CHECKING:
    from libs.audit.store import AuditStore

_log = get_logger("segments.audit")
MAX_TEXT = 500


@dataclass(frozen=True)
class AuditRecord:
    """Who (`principal`, `key_id`) did what (`method`) to which resource (`project_id`,
    `resource`), when (`time`), with which outcome (`outcome`: "OK" or a status code name;
    `message`: the error's), in which request, from where (`client`)."""

    principal: str
    key_id: str
    method: str
    project_id: str
    resource: str
    outcome: str
    message: str = ""
    request_id: str = ""
    client: str = ""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def clipped(self) -> AuditRecord:
        """The record with its free text cut to the stored lengths."""
        return AuditRecord(
            **{
                **asdict(self),
                "message": self.message[:MAX_TEXT],
                "resource": self.resource[:MAX_TEXT],
                "request_id": self.request_id[:128],
                "client": self.client[:128],
            }
        )


class AuditWriter:
    """Logs and stores audit records. The store is opened on the first record (servers that
    serve no audited call never open it); a record that cannot be stored is still in the log,
    with an error line saying so, and the call it records keeps its own outcome."""

    def __init__(self, store: AuditStore | None) -> None:
        self.store = store
        self._opened = False
        self._lock = asyncio.Lock()

    async def write(self, record: AuditRecord) -> None:
        record = record.clipped()
        fields = asdict(record)
        fields["time"] = record.time.isoformat()
        fields.pop("request_id")  # every line of the call carries it already
        _log.info("audit", **fields)
        if self.store is None:
            return
        try:
            async with self._lock:
                if not self._opened:
                    await self.store.open()
                    self._opened = True
            await self.store.insert(record)
        except (DomainError, OSError) as exc:
            _log.error("audit_record_not_stored", record_id=record.record_id, error=str(exc))
        except Exception as exc:  # a broken store must not turn a done write into a failure
            _log.error("audit_record_not_stored", record_id=record.record_id, exc_info=exc)

    async def close(self) -> None:
        if self.store is not None and self._opened:
            await self.store.close()
            self._opened = False
