"""The definition service's RPCs about projects themselves, API keys and access decisions:
converts messages and calls the use cases (`application.projects`, `application.access`)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import empty_pb2

from libs.audit import AuditStore
from libs.common.access import AccessDecider
from libs.common.context import caller_email, current_credential, current_principal
from libs.common.errors import InvalidArgument
from libs.model.definition_proto import datetime_to_timestamp, instant_from_proto
from segments.v1 import access_pb2
from segments.v1 import definition_service_pb2 as pb
from services.definition import definition_messages as convert
from services.definition.application import access, audit, projects
from services.definition.domain.names import parse_project_name
from services.definition.domain.ports import Store

Context = grpc.aio.ServicerContext[Any, Any]


class AccessMethods:
    """Projects, keys, CheckAccess and the audit trail; mixed into the definition servicer."""

    store: Store
    decider: AccessDecider
    audit: AuditStore | None

    # --- projects ---------------------------------------------------------------------------

    async def CreateProject(self, request: pb.CreateProjectRequest, context: Context) -> Any:
        project = await projects.create_project(
            self.store, request.project_id, request.project.time_zone
        )
        return convert.project_to_proto(project)

    async def ListProjects(self, request: pb.ListProjectsRequest, context: Context) -> Any:
        page = await projects.list_projects(
            self.store, current_principal(), request.page_size, request.page_token
        )
        return pb.ListProjectsResponse(
            projects=[convert.project_to_proto(p) for p in page.projects],
            next_page_token=page.next_page_token,
        )

    async def DeleteProject(self, request: pb.DeleteProjectRequest, context: Context) -> Any:
        project_id = parse_project_name(request.name, "name")
        await projects.delete_project(self.store, project_id, request.force, request.etag)
        return empty_pb2.Empty()

    # --- keys -------------------------------------------------------------------------------

    async def CreateApiKey(self, request: access_pb2.CreateApiKeyRequest, context: Context) -> Any:
        if not request.HasField("api_key"):
            raise InvalidArgument.field("api_key", "is required")
        k = request.api_key
        new = access.NewKey(
            principal=convert.principal_from_proto(k.principal, "api_key.principal"),
            grants=tuple(
                convert.grant_from_proto(g, f"api_key.grants[{i}]") for i, g in enumerate(k.grants)
            ),
            display_name=k.display_name,
            expire_time=instant_from_proto(k.expire_time, "api_key.expire_time")
            if k.HasField("expire_time")
            else None,
        )
        key, text = await access.create_key(self.store, new, caller_email())
        return access_pb2.CreateApiKeyResponse(api_key=convert.key_to_proto(key), secret=text)

    async def GetApiKey(self, request: access_pb2.GetApiKeyRequest, context: Context) -> Any:
        key_id = convert.parse_key_name(request.name, "name")
        return convert.key_to_proto(await access.get_key(self.store, key_id))

    async def ListApiKeys(self, request: access_pb2.ListApiKeysRequest, context: Context) -> Any:
        page = await access.list_keys(
            self.store, request.page_size, request.page_token, request.show_revoked
        )
        return access_pb2.ListApiKeysResponse(
            api_keys=[convert.key_to_proto(k) for k in page.keys],
            next_page_token=page.next_page_token,
        )

    async def RevokeApiKey(self, request: access_pb2.RevokeApiKeyRequest, context: Context) -> Any:
        key_id = convert.parse_key_name(request.name, "name")
        return convert.key_to_proto(await access.revoke_key(self.store, key_id))

    # --- decisions --------------------------------------------------------------------------

    async def CheckAccess(self, request: access_pb2.CheckAccessRequest, context: Context) -> Any:
        names = {
            parse_project_name(name, f"projects[{i}]") for i, name in enumerate(request.projects)
        }
        role = convert.role_from_proto(request.role, "role") if request.role else None
        decided = await self.decider.check(current_credential(), tuple(sorted(names)), role)
        out = access_pb2.CheckAccessResponse(
            principal=convert.principal_to_proto(decided.principal),
            api_key=f"apiKeys/{decided.principal.key_id}" if decided.principal.key_id else "",
        )
        if decided.expire_time is not None:
            out.expire_time.CopyFrom(datetime_to_timestamp(decided.expire_time))
        return out

    # --- audit ------------------------------------------------------------------------------

    async def ListAuditRecords(
        self, request: access_pb2.ListAuditRecordsRequest, context: Context
    ) -> Any:
        project_id = parse_project_name(request.parent, "parent") if request.parent else None
        page = await audit.list_audit_records(
            self.audit, project_id, request.page_size, request.page_token
        )
        return access_pb2.ListAuditRecordsResponse(
            audit_records=[convert.audit_record_to_proto(r) for r in page.records],
            next_page_token=page.next_page_token,
        )
