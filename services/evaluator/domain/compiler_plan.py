"""Static facts about a condition tree that choose the shape of its query.

The root's top-level AND is split into conjuncts, each classified by the leaves it holds:

* behavioural only (did, did not, inaction, first time, sequence): evaluated in the events
  aggregation's HAVING when the query is driven by events;
* profile only (user properties): evaluated as a semi-join on `profiles` (an inner join, or
  `uid NOT IN (...)` of the complement when a user without the properties qualifies), which
  reads only the referenced maps instead of joining every profile;
* mixed: evaluated row by row after the joins, as before.

A query is *driven by events* when some behavioural conjunct is false for a user with no
relevant event: then only users present in the events aggregation can qualify, and the
universe (every user) need not be read at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from libs.model.definition import (
    NEGATIVE_OPERATORS,
    BooleanOperator,
    Condition,
    DidEvent,
    DidNotEvent,
    FirstTime,
    Inaction,
    Node,
    Sequence,
    UserProperty,
)
from services.evaluator.domain.compiler_predicates import and_all, negate, or_all

BEHAVIOURAL = (DidEvent, DidNotEvent, Inaction, FirstTime, Sequence)


@dataclass(frozen=True)
class Conjuncts:
    behavioural: tuple[Node, ...]
    profile: tuple[Node, ...]
    mixed: tuple[Node, ...]


def conjuncts(root: Node | None) -> list[Node]:
    """The root's top-level AND operands (nested ANDs flattened); [root] otherwise."""
    if root is None:
        return []
    if root.condition is None and root.operator is BooleanOperator.AND:
        return [part for child in root.children for part in conjuncts(child)]
    return [root]


def _leaves(node: Node) -> list[Condition]:
    if node.condition is not None:
        return [node.condition]
    return [leaf for child in node.children for leaf in _leaves(child)]


def classify(root: Node | None) -> Conjuncts:
    behavioural: list[Node] = []
    profile: list[Node] = []
    mixed: list[Node] = []
    for node in conjuncts(root):
        leaves = _leaves(node)
        if leaves and all(isinstance(leaf, BEHAVIOURAL) for leaf in leaves):
            behavioural.append(node)
        elif leaves and all(isinstance(leaf, UserProperty) for leaf in leaves):
            profile.append(node)
        else:
            mixed.append(node)
    return Conjuncts(tuple(behavioural), tuple(profile), tuple(mixed))


def expression(node: Node, leaf: Callable[[Condition], str]) -> str:
    """The SQL of a tree, with `leaf` giving each condition's SQL."""
    if node.condition is not None:
        return leaf(node.condition)
    parts = [expression(child, leaf) for child in node.children]
    if node.operator is BooleanOperator.OR:
        return or_all(parts)
    if node.operator is BooleanOperator.NOT:
        return negate(and_all(parts))
    return and_all(parts)


def value(node: Node, leaf: Callable[[Condition], bool]) -> bool:
    """The tree's truth value when every leaf's value is known."""
    if node.condition is not None:
        return leaf(node.condition)
    parts = [value(child, leaf) for child in node.children]
    if node.operator is BooleanOperator.OR:
        return any(parts)
    if node.operator is BooleanOperator.NOT:
        return not all(parts)
    return all(parts)


def holds_without_profile(node: Node) -> bool:
    """A profile-only tree's value for a user lacking every property (or any profile):
    negative operators match such a user, positive ones never do."""

    def leaf(condition: Condition) -> bool:
        assert isinstance(condition, UserProperty)
        return condition.filter.comparison.operator in NEGATIVE_OPERATORS

    return value(node, leaf)
