"""Create, update and clone: validation, references, cycles and the write itself."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from libs.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
)
from libs.model.definition import Definition, SegmentType, segment_type
from services.definition.application.common import (
    check_etag,
    check_request_id,
    load_project,
    load_segment,
    refuse_system,
    replayed,
    request_body,
    retrying_on_request_race,
    utc_now,
)
from services.definition.application.dependants import dependent_violations
from services.definition.domain import limits
from services.definition.domain.graph import find_cycle, reference_shape
from services.definition.domain.names import validate_new_segment_id
from services.definition.domain.ports import Store, StoredRequest, Transaction
from services.definition.domain.references import reference_paths, reference_violations
from services.definition.domain.segment import (
    Project,
    Segment,
    name_key,
    new_etag,
    new_segment_id,
)
from services.definition.domain.validation import definition_violations, text_problems

UPDATABLE_FIELDS = ("display_name", "description", "definition")


@dataclass(frozen=True)
class NewSegment:
    project_id: str
    display_name: str
    description: str
    definition: Definition
    segment_id: str = ""
    request_id: str = ""
    caller: str = ""


@dataclass(frozen=True)
class SegmentChange:
    project_id: str
    segment_id: str
    fields: frozenset[str]
    display_name: str
    description: str
    definition: Definition | None
    etag: str = ""
    request_id: str = ""
    caller: str = ""


def _content_violations(
    project: Project,
    display_name: str,
    description: str,
    definition: Definition | None,
    prefix: str,
) -> list[FieldViolation]:
    found = [FieldViolation(f"{prefix}{f}", p) for f, p in text_problems(display_name, description)]
    if definition is not None:
        found += definition_violations(
            definition, f"{prefix}definition", project.project_id, project.time_zone
        )
    return found


def _raise_if(violations: list[FieldViolation]) -> None:
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise InvalidArgument(f"{first.field}: {first.description}{more}", violations=violations)


async def _check_name_free(tx: Transaction, segment: Segment) -> None:
    owner = await tx.name_owner(segment.project_id, name_key(segment.display_name))
    if owner is not None and owner != segment.segment_id:
        raise AlreadyExists(
            f"a segment named {segment.display_name!r} already exists in "
            f"projects/{segment.project_id} (names are case-insensitive)",
            reason="SEGMENT_NAME_TAKEN",
        )


async def _lock_and_check_references(
    tx: Transaction, segment_id: str, project_id: str, definition: Definition, path: str
) -> set[str]:
    """Locks the referenced segments, checks they exist, are past-behaviour segments and
    close no cycle; returns their ids."""
    paths = reference_paths(definition, path)
    ids = {segment_id_ for _, segment_id_ in paths}
    existing = await tx.get_segments(project_id, ids, lock=True)
    violations = reference_violations(project_id, paths, existing)
    if not violations and ids:
        graph = await tx.reference_graph(project_id, ids)
        graph.pop(segment_id, None)  # its own references are being replaced
        for ref_path, ref_id in paths:
            cycle = find_cycle(segment_id, [ref_id], graph)
            if cycle is not None:
                names = " -> ".join(cycle)
                violations.append(FieldViolation(ref_path, f"would create a cycle: {names}"))
    if not violations and ids:
        violations += await _shape_violations(tx, project_id, segment_id, ids, path)
    _raise_if(violations)
    return ids


async def _shape_violations(
    tx: Transaction, project_id: str, segment_id: str, ids: set[str], path: str
) -> list[FieldViolation]:
    """The reference depth and expanded size limits, for the segment written and for every
    segment that references it (directly or not) once its references are `ids`."""
    me = segment_id or "(new segment)"
    above: set[str] = set()
    frontier = {segment_id} if segment_id else set()
    while frontier:
        pairs = await tx.dependents_of(project_id, frontier)
        frontier = {dependent for dependent, _ in pairs} - above
        above |= frontier
    graph = dict(await tx.reference_graph(project_id, ids | above))
    graph[me] = sorted(ids)  # its references as written, not as stored
    found: list[FieldViolation] = []
    for root in [me, *sorted(above)]:
        depth, size = reference_shape(root, graph)
        whose = "its" if root == me else f"segment {root}'s"
        if depth > limits.MAX_REFERENCE_DEPTH:
            found.append(
                FieldViolation(
                    path,
                    f"{whose} references would nest {depth} deep "
                    f"(at most {limits.MAX_REFERENCE_DEPTH})",
                )
            )
        elif size > limits.MAX_EXPANDED_REFERENCES:
            found.append(
                FieldViolation(
                    path,
                    f"{whose} references would reach {size} segments, counting each as often "
                    f"as it is reached (at most {limits.MAX_EXPANDED_REFERENCES})",
                )
            )
    return found


async def _write_references(
    tx: Transaction, project_id: str, segment_id: str, old: set[str], new: set[str]
) -> None:
    if old == new:
        return
    await tx.replace_references(project_id, segment_id, new)
    await tx.refresh_dependent_counts(project_id, old | new)


async def _insert(tx: Transaction, new: NewSegment, segment_id: str, prefix: str) -> Segment:
    now = utc_now()
    segment = Segment(
        project_id=new.project_id,
        segment_id=segment_id,
        display_name=new.display_name,
        description=new.description,
        definition=new.definition,
        creator=new.caller,
        updater=new.caller,
        create_time=now,
        update_time=now,
        etag=new_etag(),
    )
    if await tx.get_segment(new.project_id, segment_id) is not None:
        raise AlreadyExists(f"{segment.name} already exists", reason="SEGMENT_ID_TAKEN")
    refs = await _lock_and_check_references(
        tx, segment_id, new.project_id, new.definition, f"{prefix}definition"
    )
    await _check_name_free(tx, segment)
    await tx.insert_segment(segment)
    await _write_references(tx, new.project_id, segment_id, set(), refs)
    if segment.type == SegmentType.LIVE:
        await tx.note_live_changes(new.project_id, [segment_id])
    return segment


async def _create_in(
    store: Store,
    new: NewSegment,
    method: str,
    prefix: str,
    before: datetime | None = None,
    body: str = "",
) -> Segment:
    async with store.transaction() as tx:
        project = await load_project(tx, new.project_id)
        stored = await replayed(tx, new.project_id, new.request_id, method, body)
        if stored is not None:
            return await load_segment(tx, new.project_id, stored.resource_id)
        segment_id = new.segment_id or new_segment_id()
        if new.request_id:
            await tx.save_request(
                new.project_id, new.request_id, StoredRequest(method, segment_id, body), utc_now()
            )
        _raise_if(
            _content_violations(project, new.display_name, new.description, new.definition, prefix)
        )
        await _insert(tx, new, segment_id, prefix)
        return await load_segment(tx, new.project_id, segment_id)


async def create_segment(store: Store, new: NewSegment) -> Segment:
    """CreateSegment: idempotent with request_id (a retry returns the segment created)."""
    check_request_id(new.request_id)
    if new.segment_id:
        validate_new_segment_id(new.segment_id, "segment_id")
    body = request_body(new.display_name, new.description, new.definition, new.segment_id)
    return await retrying_on_request_race(
        lambda: _create_in(store, new, "CreateSegment", "segment.", body=body)
    )


@dataclass(frozen=True)
class ValidDefinition:
    segment_type: SegmentType
    references: tuple[str, ...]  # ids of the segments referenced directly, sorted


async def validate_definition(
    store: Store, project_id: str, definition: Definition
) -> ValidDefinition:
    """ValidateDefinition: CreateSegment's checks of a definition, saving nothing."""
    async with store.transaction() as tx:
        project = await load_project(tx, project_id)
        _raise_if(definition_violations(definition, "definition", project_id, project.time_zone))
        # a new segment: nothing references it yet, so it closes no cycle
        refs = await _lock_and_check_references(tx, "", project_id, definition, "definition")
    return ValidDefinition(segment_type(definition), tuple(sorted(refs)))


async def clone_segment(
    store: Store,
    project_id: str,
    source_id: str,
    display_name: str,
    segment_id: str = "",
    request_id: str = "",
    caller: str = "",
) -> Segment:
    """CloneSegment: a new segment with the source's definition and description."""
    check_request_id(request_id)
    if segment_id:
        validate_new_segment_id(segment_id, "segment_id")
    async with store.transaction() as tx:
        await load_project(tx, project_id)
        source = await load_segment(tx, project_id, source_id)
        refuse_system(source, "cloned")
    new = NewSegment(
        project_id=project_id,
        display_name=display_name,
        description=source.description,
        definition=source.definition,
        segment_id=segment_id,
        request_id=request_id,
        caller=caller,
    )
    body = request_body(source_id, display_name, segment_id)
    return await retrying_on_request_race(
        lambda: _create_in(store, new, "CloneSegment", "", body=body)
    )


async def _update_in(store: Store, change: SegmentChange) -> Segment:
    project_id, segment_id = change.project_id, change.segment_id
    async with store.transaction() as tx:
        project = await load_project(tx, project_id)
        body = request_body(
            segment_id,
            sorted(change.fields),
            *(getattr(change, f) for f in sorted(change.fields)),
            change.etag,
        )
        if await replayed(tx, project_id, change.request_id, "UpdateSegment", body) is not None:
            return await load_segment(tx, project_id, segment_id)
        if change.request_id:
            stored = StoredRequest("UpdateSegment", segment_id, body)
            await tx.save_request(project_id, change.request_id, stored, utc_now())
        current = await load_segment(tx, project_id, segment_id, lock=True)
        refuse_system(current, "updated")
        check_etag(current, change.etag)
        updated = replace(current, updater=change.caller, update_time=utc_now(), etag=new_etag())
        if "display_name" in change.fields:
            updated = replace(updated, display_name=change.display_name)
        if "description" in change.fields:
            updated = replace(updated, description=change.description)
        new_definition = change.definition if "definition" in change.fields else None
        if new_definition is not None:
            updated = replace(updated, definition=new_definition)
        _raise_if(
            _content_violations(
                project,
                updated.display_name,
                updated.description,
                new_definition,
                "segment.",
            )
        )
        old_refs = set((await tx.references_of(project_id, [segment_id])).get(segment_id, []))
        new_refs = old_refs
        if new_definition is not None:
            new_refs = await _lock_and_check_references(
                tx, segment_id, project_id, new_definition, "segment.definition"
            )
            await _refuse_type_change(tx, current, segment_type(new_definition))
        await _check_name_free(tx, updated)
        if not await tx.update_segment(updated, current.etag):
            raise Aborted(f"{current.name} was changed concurrently; re-read and retry")
        await _write_references(tx, project_id, segment_id, old_refs, new_refs)
        if SegmentType.LIVE in (current.type, updated.type):
            await tx.note_live_changes(project_id, [segment_id])
        return await load_segment(tx, project_id, segment_id)


async def _refuse_type_change(tx: Transaction, current: Segment, new_type: SegmentType) -> None:
    """A segment others reference must stay a past-behaviour segment."""
    if new_type == SegmentType.PAST_BEHAVIOR or current.type != SegmentType.PAST_BEHAVIOR:
        return
    violations = await dependent_violations(tx, current.project_id, {current.segment_id})
    if violations:
        raise FailedPrecondition(
            f"{current.name} is referenced by other segments, so it must stay a "
            f"past-behaviour segment",
            violations=violations,
            reason="SEGMENT_IN_USE",
        )


async def update_segment(store: Store, change: SegmentChange) -> Segment:
    """UpdateSegment: the fields named in the mask; stale etags are refused (ABORTED)."""
    check_request_id(change.request_id)
    return await retrying_on_request_race(lambda: _update_in(store, change))
