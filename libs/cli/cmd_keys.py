"""`segments keys ...`: create (the secret is shown once), list, get, revoke API keys."""

from __future__ import annotations

import argparse

from libs.cli.app import Commands
from libs.cli.connection import Client
from libs.cli.errors import UsageError
from libs.cli.files import timestamp
from libs.cli.output import Output, enum_text, timestamp_text
from segments.v1 import access_pb2

NAME = "keys"
SUMMARY = "API keys: create, list, get, revoke"
COLUMNS = ("KEY", "HOLDER", "GRANTS", "NAME", "EXPIRES", "REVOKED", "CREATED")
ROLES = {"viewer": 1, "editor": 2, "exporter": 3, "admin": 4}


def _holder(key: access_pb2.ApiKey) -> str:
    kind = enum_text(access_pb2.PrincipalKind.Name(key.principal.kind), "PRINCIPAL_KIND_")
    return f"{key.principal.id} ({kind.lower()})"


def _grants(key: access_pb2.ApiKey) -> str:
    return ", ".join(
        f"{g.project}={enum_text(access_pb2.Role.Name(g.role), 'ROLE_').lower()}"
        for g in key.grants
    )


def _row(key: access_pb2.ApiKey) -> list[object]:
    return [
        key.name.removeprefix("apiKeys/"),
        _holder(key),
        _grants(key),
        key.display_name,
        timestamp_text(key.expire_time),
        timestamp_text(key.revoke_time),
        timestamp_text(key.create_time),
    ]


def _show(out: Output, key: access_pb2.ApiKey) -> None:
    if out.json:
        out.message(key)
    else:
        out.table(COLUMNS, [_row(key)])


def _key_name(given: str) -> str:
    return given if given.startswith("apiKeys/") else f"apiKeys/{given}"


def parse_grant(text: str) -> access_pb2.Grant:
    """A grant from "PROJECT=ROLE" ("-" or "*" for all projects)."""
    project, sep, role = text.partition("=")
    role_value = ROLES.get(role.strip().lower())
    if not sep or not project.strip() or role_value is None:
        raise UsageError(
            f"--grant {text!r}: write PROJECT=ROLE, ROLE one of {', '.join(ROLES)} "
            "(PROJECT '-' for all projects)"
        )
    project = project.strip().removeprefix("projects/")
    project = "-" if project in ("-", "*") else project
    return access_pb2.Grant(
        project=f"projects/{project}", role=access_pb2.Role.ValueType(role_value)
    )


def _create(client: Client, out: Output, args: argparse.Namespace) -> None:
    if bool(args.person) == bool(args.service):
        raise UsageError("the key's holder: --person EMAIL or --service NAME, one of the two")
    kind = access_pb2.PRINCIPAL_KIND_PERSON if args.person else access_pb2.PRINCIPAL_KIND_SERVICE
    key = access_pb2.ApiKey(
        principal=access_pb2.Principal(kind=kind, id=args.person or args.service),
        grants=[parse_grant(g) for g in args.grant],
        display_name=args.name or "",
    )
    if args.expires:
        key.expire_time.CopyFrom(timestamp(args.expires, "--expires"))
    created = client.call(
        client.definitions.CreateApiKey, access_pb2.CreateApiKeyRequest(api_key=key)
    )
    if out.json:
        out.message(created)
        return
    _show(out, created.api_key)
    out.line(created.secret)
    out.note("The line above is the key's secret. It is shown only now: store it.")


def _list(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = access_pb2.ListApiKeysRequest(show_revoked=args.revoked)
    keys: list[access_pb2.ApiKey] = []
    while True:
        response = client.call(client.definitions.ListApiKeys, request)
        keys += response.api_keys
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    if out.json:
        out.message(access_pb2.ListApiKeysResponse(api_keys=keys))
    else:
        out.table(COLUMNS, (_row(k) for k in keys))


def _get(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = access_pb2.GetApiKeyRequest(name=_key_name(args.key_id))
    _show(out, client.call(client.definitions.GetApiKey, request))


def _revoke(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = access_pb2.RevokeApiKeyRequest(name=_key_name(args.key_id))
    _show(out, client.call(client.definitions.RevokeApiKey, request))


def register(commands: Commands) -> None:
    p = commands.add(
        "create",
        _create,
        "create an API key; its secret is printed once",
        "  segments keys create --person ana@example.com --grant demo=editor --name laptop\n"
        "  segments keys create --service orchestrator --grant -=viewer --expires 2027-01-01",
    )
    p.add_argument("--person", metavar="EMAIL", help="the key belongs to a person")
    p.add_argument("--service", metavar="NAME", help="the key belongs to a service")
    p.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="PROJECT=ROLE",
        help="a role (viewer, editor, exporter, admin) on a project, '-' for all; repeatable",
    )
    p.add_argument("--name", help="what the key is for")
    p.add_argument("--expires", help="the key stops working at this instant (ISO 8601)")
    p = commands.add(
        "list", _list, "list API keys (never their secrets)", "  segments keys list --revoked"
    )
    p.add_argument("--revoked", action="store_true", help="also list revoked keys")
    p = commands.add("get", _get, "show an API key", "  segments keys get 0a1b2c3d4e5f")
    p.add_argument("key_id", metavar="KEY_ID", help="the key's id (apiKeys/ID)")
    p = commands.add(
        "revoke", _revoke, "revoke an API key at once", "  segments keys revoke 0a1b2c3d4e5f"
    )
    p.add_argument("key_id", metavar="KEY_ID")
