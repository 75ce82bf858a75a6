"""The export directory refuses any path that is not an export file's inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.export.adapters.export_dir import ExportDirectory, UnsafePath


@pytest.mark.parametrize(
    "relative",
    [
        "../p/j.csv",
        "p/../../j.csv",
        "/etc/passwd.csv",
        "p/j.txt",
        "p/.j.1.part",
        "p/q/j.csv",
        "p/j.csv\x00",
        "",
    ],
)
def test_paths_that_are_not_export_files_are_refused(tmp_path: Path, relative: str) -> None:
    with pytest.raises(UnsafePath):
        ExportDirectory(tmp_path / "exports").path(relative)


def test_a_project_folder_linked_outside_the_directory_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "p").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    directory = ExportDirectory(root)
    assert directory.path("q/j.csv") == root.resolve() / "q" / "j.csv"
    with pytest.raises(UnsafePath):
        directory.path("p/j.csv")
