"""Build hook: generate the Python gRPC code for ``protos/`` into the ``segments`` package.

The generated modules (``segments/v1/*_pb2.py``, ``*_pb2_grpc.py`` and ``.pyi`` stubs) are never
committed; every build of the package (wheel, sdist or editable install) regenerates them.
"""

from __future__ import annotations

import pathlib
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT


def generate_protos() -> None:
    import google.api  # from googleapis-common-protos: google/api and google/rpc .proto files
    import grpc_tools
    from grpc_tools import protoc

    googleapis_root = pathlib.Path(google.api.__path__[0]).parent.parent
    wkt_root = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    if not protos:
        raise RuntimeError(f"no .proto files under {PROTO_ROOT}")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{googleapis_root}",
        f"-I{wkt_root}",
        f"--python_out={OUT_ROOT}",
        f"--grpc_python_out={OUT_ROOT}",
        f"--mypy_out={OUT_ROOT}",
        f"--mypy_grpc_out={OUT_ROOT}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed; see the messages above")
    for package_dir in {(OUT_ROOT / p).parent for p in protos}:
        d = package_dir
        while d != OUT_ROOT:
            (d / "__init__.py").touch()
            (d / "py.typed").touch()
            d = d.parent


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        generate_protos()
        super().run()


if "egg_info" in sys.argv or "dist_info" in sys.argv or "bdist_wheel" in sys.argv:
    # Package discovery runs before build_py: make sure segments/v1 exists by then.
    generate_protos()

setup(cmdclass={"build_py": BuildPyWithProtos})
