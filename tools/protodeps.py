"""Copy the Google API protos that the contracts import into build/protodeps for buf.

They ship in the googleapis-common-protos wheel; buf reads them as a dependency module (not
linted). Run by `make lint` before `buf lint`.
"""

from __future__ import annotations

import pathlib
import shutil

import google.api

WANTED = [
    "google/api/field_behavior.proto",
    "google/api/resource.proto",
    "google/api/client.proto",
    "google/api/launch_stage.proto",
    "google/api/http.proto",
    "google/rpc/status.proto",
    "google/type/date.proto",
]


def main() -> None:
    src_root = pathlib.Path(google.api.__path__[0]).parent.parent
    dest_root = pathlib.Path(__file__).resolve().parent.parent / "build" / "protodeps"
    for rel in WANTED:
        dest = dest_root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src_root / rel, dest)


if __name__ == "__main__":
    main()
