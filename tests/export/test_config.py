"""The export settings from the environment, and what a bad value says."""

from __future__ import annotations

import pytest

from libs.common.config import Config, ConfigError
from services.export.service import settings_from


def test_export_settings_from_the_environment() -> None:
    config = Config.from_env({
        "SEGMENTS_EXPORT_WORKERS": "0",
        "SEGMENTS_EXPORT_MAX_RUNNING_PER_PROJECT": "5",
        "SEGMENTS_EXPORT_MAX_UNFINISHED_PER_PRINCIPAL": "3",
        "SEGMENTS_EXPORT_LEASE_SECONDS": "30",
        "SEGMENTS_EXPORT_FILE_TTL_SECONDS": "3600",
        "SEGMENTS_EXPORT_STREAM_WAIT_SECONDS": "60",
    })  # fmt: skip
    settings = settings_from(config)
    assert (settings.workers, settings.max_running_per_project) == (0, 5)
    assert (settings.max_unfinished_per_principal, settings.stream_wait_seconds) == (3, 60.0)
    assert (settings.lease_seconds, settings.file_ttl_seconds) == (30.0, 3600.0)
    defaults = settings_from(Config.from_env({}))
    assert (defaults.workers, defaults.lease_seconds, defaults.file_ttl_seconds) == (
        2, 15.0, 7 * 86400.0)  # fmt: skip
    assert defaults.max_unfinished_per_principal == 10


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SEGMENTS_EXPORT_WORKERS", "-1"),
        ("SEGMENTS_EXPORT_MAX_RUNNING_PER_PROJECT", "0"),
        ("SEGMENTS_EXPORT_MAX_UNFINISHED_PER_PRINCIPAL", "0"),
        ("SEGMENTS_EXPORT_LEASE_SECONDS", "1"),
        ("SEGMENTS_EXPORT_FILE_TTL_SECONDS", "0"),
        ("SEGMENTS_EXPORT_STREAM_WAIT_SECONDS", "0"),
        ("SEGMENTS_EXPORT_WORKERS", "two"),
    ],
)
def test_a_bad_export_setting_names_its_variable(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Config.from_env({key: value})
