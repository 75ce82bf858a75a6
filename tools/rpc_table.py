"""The RPC table of docs/security.md, generated from the role table (libs/common/rpc_roles.py).

`python -m tools.rpc_table` rewrites the table between the markers of docs/security.md;
tests/foundation/test_rpc_roles.py fails when the document and the role table differ.
"""

from __future__ import annotations

import pathlib

from libs.common.rpc_roles import RPC_ROLES, SELF_RPCS, UNSCOPED_RPCS

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "security.md"
BEGIN = "<!-- rpc-table:begin (python -m tools.rpc_table) -->"
END = "<!-- rpc-table:end -->"


def table() -> str:
    """The markdown table: every RPC, the role it needs, and where."""
    lines = ["| RPC | role | on |", "|---|---|---|"]
    for method, role in RPC_ROLES.items():
        service, name = method.strip("/").split("/")
        if method in SELF_RPCS:
            needed, scope = "any valid key", "the caller's own key"
        elif method in UNSCOPED_RPCS:
            needed, scope = role.name.lower(), "all projects"
        else:
            needed, scope = role.name.lower(), "the project the request names"
        lines.append(f"| `{service.removeprefix('segments.v1.')}/{name}` | {needed} | {scope} |")
    return "\n".join(lines)


def documented() -> str:
    """The table as docs/security.md holds it now."""
    text = DOC.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()


def main() -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    main()
