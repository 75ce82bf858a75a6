"""The evaluator service takes its snapshot and membership-cache settings from Config."""

from __future__ import annotations

import uuid
from pathlib import Path

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from services.evaluator.service import build_service


async def test_snapshot_and_cache_settings_come_from_config(
    tmp_path: Path, chdb_engine: ChdbEngine
) -> None:
    # chDB opens one data path per process: reuse the worker's, apart by database name
    (tmp_path / "chdb").symlink_to(chdb_engine.path, target_is_directory=True)
    config = Config(
        data_dir=tmp_path,
        clickhouse_database=f"cfg_{uuid.uuid4().hex[:12]}",
        snapshots_kept=1,
        membership_cache_members=0,
        snapshot_check_seconds=0.0,
    )
    service = build_service(config)
    await service.start()
    try:
        assert service.evaluator is not None
        snapshots = service.evaluator.snapshots
        assert (snapshots.keep, snapshots.cache.max_members, snapshots.check_ttl) == (1, 0, 0.0)
    finally:
        await service.stop()
