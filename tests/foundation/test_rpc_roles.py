"""Every RPC of the four services has a row in the role table, and the table names no RPC
that does not exist."""

from __future__ import annotations

from libs.common.rpc_roles import RPC_ROLES, SELF_RPCS, UNSCOPED_RPCS, Role, required_role
from segments.v1 import (
    definition_service_pb2,
    evaluator_service_pb2,
    export_service_pb2,
    reporting_service_pb2,
)
from tools import rpc_table

_MODULES = (
    definition_service_pb2,
    evaluator_service_pb2,
    reporting_service_pb2,
    export_service_pb2,
)


def _all_methods() -> set[str]:
    methods: set[str] = set()
    for module in _MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods.add(f"/{service.full_name}/{method.name}")
    return methods


def test_every_rpc_has_a_role() -> None:
    missing = sorted(_all_methods() - set(RPC_ROLES))
    assert missing == [], f"add these RPCs to libs/common/rpc_roles.py: {missing}"


def test_the_table_names_only_existing_rpcs() -> None:
    assert sorted(set(RPC_ROLES) - _all_methods()) == []


def test_unknown_method_has_no_role() -> None:
    assert required_role("/segments.v1.SegmentDefinitionService/Nope") is None
    assert required_role("/segments.v1.SegmentExportService/CreateExportJob") is Role.EXPORTER


def test_unscoped_and_self_rpcs_are_in_the_table() -> None:
    assert set(RPC_ROLES) >= UNSCOPED_RPCS and set(RPC_ROLES) >= SELF_RPCS
    assert not UNSCOPED_RPCS & SELF_RPCS


def test_the_documented_rpc_table_is_the_role_table() -> None:
    assert rpc_table.documented() == rpc_table.table(), "run: python -m tools.rpc_table"
