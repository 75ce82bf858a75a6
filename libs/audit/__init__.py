"""The audit trail: one record per write, export and key operation of any service (who, what,
which resource, when, outcome), kept in an SQL store shared by the processes of a deployment
(`Config.service_database_url("audit")`) and read through the definition service's
ListAuditRecords."""

from libs.audit.records import AuditRecord, AuditWriter
from libs.audit.store import AuditStore

__all__ = ["AuditRecord", "AuditStore", "AuditWriter"]
