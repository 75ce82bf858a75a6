"""References between segments: cycle detection and evaluation order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class CycleError(ValueError):
    """The references form a cycle; `path` lists it (first id repeated at the end)."""

    def __init__(self, path: list[str]) -> None:
        super().__init__(" -> ".join(path))
        self.path = path


def find_cycle(
    segment_id: str, references: Iterable[str], edges: Mapping[str, Iterable[str]]
) -> list[str] | None:
    """The cycle `segment_id` would close by referencing `references`, or None.

    `edges` maps a segment id to the ids it references (the stored graph, without the
    segment's own, about to be replaced, references).
    """
    parents: dict[str, str] = {}
    stack = [r for r in references]
    for r in stack:
        parents.setdefault(r, segment_id)
    seen: set[str] = set()
    while stack:
        current = stack.pop()
        if current == segment_id:
            path = [segment_id]
            node = parents[segment_id]
            while node != segment_id:
                path.append(node)
                node = parents[node]
            path.append(segment_id)
            return [path[0], *reversed(path[1:-1]), segment_id]
        if current in seen:
            continue
        seen.add(current)
        for nxt in edges.get(current, ()):
            if nxt not in seen:
                parents.setdefault(nxt, current)
                stack.append(nxt)
    return None


def topological_order(root: str, edges: Mapping[str, Iterable[str]]) -> list[str]:
    """`root` and everything it references transitively, dependencies first, `root` last.

    Deterministic: references are visited in sorted order. Raises CycleError on a cycle.
    """
    order: list[str] = []
    done: set[str] = set()
    on_path: list[str] = []
    on_path_set: set[str] = set()
    # Iterative depth-first search: (node, its remaining references).
    stack: list[tuple[str, list[str]]] = []

    def enter(node: str) -> None:
        on_path.append(node)
        on_path_set.add(node)
        stack.append((node, sorted(set(edges.get(node, ())), reverse=True)))

    enter(root)
    while stack:
        node, pending = stack[-1]
        if pending:
            nxt = pending.pop()
            if nxt in on_path_set:
                raise CycleError([*on_path[on_path.index(nxt) :], nxt])
            if nxt not in done:
                enter(nxt)
            continue
        stack.pop()
        on_path.pop()
        on_path_set.discard(node)
        done.add(node)
        order.append(node)
    return order


def reference_shape(root: str, edges: Mapping[str, Iterable[str]]) -> tuple[int, int]:
    """(depth, expanded size) of `root`'s references: the longest chain of references from it
    (0 when it references nothing) and how many references a query of it meets when each
    is followed wherever it is reached (a segment reached on two paths counts twice).
    The graph must be acyclic."""
    depth: dict[str, int] = {}
    size: dict[str, int] = {}
    # Iterative post-order: a node is finished once all its references are.
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in depth:
            continue
        refs = list(edges.get(node, ()))
        if expanded:
            depth[node] = 1 + max((depth[r] for r in refs), default=-1)
            size[node] = sum(1 + size[r] for r in refs)
            continue
        stack.append((node, True))
        stack.extend((r, False) for r in refs if r not in depth)
    return depth[root], size[root]
