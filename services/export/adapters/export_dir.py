"""The export directory: FILE jobs' CSV files.

A job writes `<dir>/<project>/.<job>.<attempt>.part` and renames it to `<dir>/<project>/<job>.csv`
once whole (flushed and synced first, the directory synced after), so a reader of the final
name never sees a partial file. Paths come only from `domain.jobs.output_path` (a validated
project id and a generated job id) and are checked again here to stay inside the directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from libs.common.errors import NotFound

READ_CHUNK_BYTES = 1024 * 1024
_RELATIVE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}/[A-Za-z0-9][A-Za-z0-9_-]{0,62}\.csv")


class UnsafePath(ValueError):
    """A path that is not an export file's inside the export directory."""


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartialFile:
    """An output file being written (`OutputFile`)."""

    def __init__(self, temp: Path, final: Path, handle: BinaryIO) -> None:
        self.temp = temp
        self.final = final
        self._handle = handle

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._handle.write, data)

    def _commit(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self.temp, self.final)
        _sync_directory(self.final.parent)

    async def commit(self) -> None:
        await asyncio.to_thread(self._commit)

    def _discard(self) -> None:
        self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()

    async def discard(self) -> None:
        await asyncio.to_thread(self._discard)


class ExportDirectory:
    """`ExportFiles` over a local directory (created on first use)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, relative_path: str) -> Path:
        """The absolute path of an export file; UnsafePath for anything else."""
        if not _RELATIVE.fullmatch(relative_path):
            raise UnsafePath(relative_path)
        path = (self.root / relative_path).resolve()
        if not path.is_relative_to(self.root):
            raise UnsafePath(relative_path)
        return path

    def _delete_partial(self, relative_path: str) -> None:
        final = self.path(relative_path)
        if final.parent.exists():
            for stale in final.parent.glob(f".{final.stem}.*.part"):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()

    async def delete_partial(self, relative_path: str) -> None:
        await asyncio.to_thread(self._delete_partial, relative_path)

    def _create(self, relative_path: str, attempt: int) -> PartialFile:
        final = self.path(relative_path)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._delete_partial(relative_path)
        temp = final.parent / f".{final.stem}.{attempt}.part"
        return PartialFile(temp, final, open(temp, "wb"))

    async def create(self, relative_path: str, attempt: int) -> PartialFile:
        return await asyncio.to_thread(self._create, relative_path, attempt)

    async def read(self, relative_path: str) -> AsyncIterator[bytes]:
        path = self.path(relative_path)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise NotFound(
                f"the export file {relative_path} is not in the export directory",
                reason="EXPORT_FILE_MISSING",
            ) from None
        try:
            while data := await asyncio.to_thread(handle.read, READ_CHUNK_BYTES):
                yield data
        finally:
            handle.close()

    def _delete(self, relative_path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(relative_path).unlink()

    async def delete(self, relative_path: str) -> None:
        await asyncio.to_thread(self._delete, relative_path)

    def partial_files(self) -> list[Path]:
        """Partial files present (for checks and clean-up)."""
        return sorted(self.root.glob("*/.*.part")) if self.root.exists() else []
