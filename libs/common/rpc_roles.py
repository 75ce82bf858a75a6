"""The one table of which role each RPC needs.

Every RPC of the four services is listed here by its full method name. The server's access
check (`libs.common.access`, docs/security.md) looks a method up in `RPC_ROLES`; a method that
is missing is refused, never allowed by default. Roles are ordered: each includes the
rights of the ones before it (viewer < editor < exporter < admin).

The role is needed on the project the request names (its `parent`, `name` or `segment`
field, `projects/{project}/...`). A request that names no project, and every RPC listed in
`UNSCOPED_RPCS`, needs the role on all projects. The RPCs of `SELF_RPCS` concern only the
caller's own key: any valid key may call them (their row says what they would otherwise need).

Add a row here in the same change that adds an RPC to a contract.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Role(enum.IntEnum):
    """A role granted to a key on one project (or on all projects)."""

    VIEWER = 1  # read definitions, count, stream, check membership, read reports
    EDITOR = 2  # also write definitions, ingest events and profiles, upload lists, deltas
    EXPORTER = 3  # also export jobs
    ADMIN = 4  # also keys, project settings, creating and deleting projects


_DEFINITION = "/segments.v1.SegmentDefinitionService/"
_EVALUATOR = "/segments.v1.SegmentEvaluatorService/"
_REPORTING = "/segments.v1.SegmentReportingService/"
_EXPORT = "/segments.v1.SegmentExportService/"

RPC_ROLES: Mapping[str, Role] = {
    # Definition service.
    _DEFINITION + "GetProject": Role.VIEWER,
    _DEFINITION + "UpdateProject": Role.ADMIN,
    _DEFINITION + "ListProjects": Role.VIEWER,
    _DEFINITION + "GetSegment": Role.VIEWER,
    _DEFINITION + "ListSegments": Role.VIEWER,
    _DEFINITION + "CreateSegment": Role.EDITOR,
    _DEFINITION + "UpdateSegment": Role.EDITOR,
    _DEFINITION + "DeleteSegment": Role.EDITOR,
    _DEFINITION + "BatchDeleteSegments": Role.EDITOR,
    _DEFINITION + "CloneSegment": Role.EDITOR,
    _DEFINITION + "ValidateDefinition": Role.VIEWER,
    _DEFINITION + "ListDependentSegments": Role.VIEWER,
    _DEFINITION + "GetSegmentDependencies": Role.VIEWER,
    _DEFINITION + "RegisterSegmentUsage": Role.EDITOR,
    _DEFINITION + "UnregisterSegmentUsage": Role.EDITOR,
    _DEFINITION + "ListSegmentUsages": Role.VIEWER,
    _DEFINITION + "ListSegmentEngagements": Role.VIEWER,
    _DEFINITION + "CreateProject": Role.ADMIN,
    _DEFINITION + "DeleteProject": Role.ADMIN,
    _DEFINITION + "CreateApiKey": Role.ADMIN,
    _DEFINITION + "GetApiKey": Role.ADMIN,
    _DEFINITION + "ListApiKeys": Role.ADMIN,
    _DEFINITION + "RevokeApiKey": Role.ADMIN,
    _DEFINITION + "CheckAccess": Role.VIEWER,
    _DEFINITION + "ListAuditRecords": Role.ADMIN,
    _DEFINITION + "WatchLiveSegments": Role.VIEWER,
    # Evaluator service.
    _EVALUATOR + "IngestEvents": Role.EDITOR,
    _EVALUATOR + "UpsertProfiles": Role.EDITOR,
    _EVALUATOR + "GetProfile": Role.VIEWER,
    _EVALUATOR + "SetTestUsers": Role.EDITOR,
    _EVALUATOR + "UploadCustomList": Role.EDITOR,
    _EVALUATOR + "ApplyPartnerDelta": Role.EDITOR,
    _EVALUATOR + "CountSegment": Role.VIEWER,
    _EVALUATOR + "EstimateDefinition": Role.VIEWER,
    _EVALUATOR + "ExplainSegment": Role.VIEWER,
    _EVALUATOR + "StreamAudience": Role.VIEWER,
    _EVALUATOR + "StreamAudienceTable": Role.EXPORTER,  # the export data path
    _EVALUATOR + "CheckMembership": Role.VIEWER,
    _EVALUATOR + "CreateSnapshot": Role.EDITOR,
    _EVALUATOR + "GetSnapshot": Role.VIEWER,
    _EVALUATOR + "ListSnapshots": Role.VIEWER,
    _EVALUATOR + "ListSnapshotChanges": Role.VIEWER,
    _EVALUATOR + "StreamLiveEntries": Role.VIEWER,
    _EVALUATOR + "CountLiveEntries": Role.VIEWER,
    _EVALUATOR + "ComputeSegmentFigures": Role.VIEWER,
    _EVALUATOR + "ComputeDailyFigures": Role.VIEWER,
    # Reporting service.
    _REPORTING + "GetSegmentTrend": Role.VIEWER,
    _REPORTING + "GetReachability": Role.VIEWER,
    _REPORTING + "ListSampleUsers": Role.VIEWER,
    _REPORTING + "GetLiveRate": Role.VIEWER,
    _REPORTING + "RunDailyJob": Role.EDITOR,
    _REPORTING + "GetDailyRun": Role.VIEWER,
    _REPORTING + "ListDailyRuns": Role.VIEWER,
    # Export service.
    _EXPORT + "CreateExportJob": Role.EXPORTER,
    _EXPORT + "GetExportJob": Role.EXPORTER,
    _EXPORT + "ListExportJobs": Role.EXPORTER,
    _EXPORT + "CancelExportJob": Role.EXPORTER,
    _EXPORT + "StreamExportJob": Role.EXPORTER,
}


#: RPCs that act on no one project: they need their role on all projects, whatever the
#: request holds (the name of a project being created, key names).
UNSCOPED_RPCS: frozenset[str] = frozenset(
    _DEFINITION + m
    for m in ("CreateProject", "CreateApiKey", "GetApiKey", "ListApiKeys", "RevokeApiKey")
)

#: RPCs about the caller's own key: any valid key may call them. ListProjects answers with the
#: projects the key holds a role on; CheckAccess answers whether the key may do something.
SELF_RPCS: frozenset[str] = frozenset(_DEFINITION + m for m in ("ListProjects", "CheckAccess"))


#: Expensive RPCs (count, stream, snapshot, export): each principal may run at most
#: `Config.max_concurrent_expensive_calls` of them at once in one process.
EXPENSIVE_RPCS: frozenset[str] = frozenset(
    {
        _EVALUATOR + "CountSegment",
        _EVALUATOR + "EstimateDefinition",
        _EVALUATOR + "StreamAudience",
        _EVALUATOR + "StreamAudienceTable",
        _EVALUATOR + "CreateSnapshot",
        _EVALUATOR + "CountLiveEntries",
        _EVALUATOR + "ComputeSegmentFigures",
        _EVALUATOR + "ComputeDailyFigures",
        _REPORTING + "RunDailyJob",
        _EXPORT + "CreateExportJob",
        _EXPORT + "StreamExportJob",
    }
)


def required_role(method: str) -> Role | None:
    """The role `method` (for example "/segments.v1.SegmentEvaluatorService/CountSegment")
    needs, or None when the method is not in the table (and so must be refused)."""
    return RPC_ROLES.get(method)
