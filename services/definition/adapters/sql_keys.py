"""SQL for API keys and their grants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from libs.common.errors import AlreadyExists
from libs.common.principal import Principal, PrincipalKind
from libs.common.rpc_roles import Role
from services.definition.adapters.sql_base import SqlBase
from services.definition.adapters.tables import api_key_grants, api_keys
from services.definition.domain.keys import ApiKey, Grant

K = api_keys.c
G = api_key_grants.c


def _key(row: Any, grants: list[Grant]) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        secret_hash=row.secret_hash,
        principal=Principal(PrincipalKind(row.principal_kind), row.principal_id),
        grants=tuple(sorted(grants, key=lambda g: g.project_id)),
        display_name=row.display_name,
        creator=row.creator,
        create_time=row.create_time,
        expire_time=row.expire_time,
        revoke_time=row.revoke_time,
    )


class KeySql(SqlBase):
    async def _grants(self, key_ids: list[str]) -> dict[str, list[Grant]]:
        found: dict[str, list[Grant]] = {k: [] for k in key_ids}
        if key_ids:
            result = await self.conn.execute(
                sa.select(G.key_id, G.project_id, G.role).where(G.key_id.in_(key_ids))
            )
            for key_id, project_id, role in result:
                found[key_id].append(Grant(project_id, Role[role]))
        return found

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = (await self.conn.execute(sa.select(api_keys).where(K.key_id == key_id))).first()
        if row is None:
            return None
        return _key(row, (await self._grants([key_id]))[key_id])

    async def insert_api_key(self, key: ApiKey) -> None:
        """ALREADY_EXISTS when a key with its id exists."""
        exists = await self.conn.scalar(sa.select(K.key_id).where(K.key_id == key.key_id))
        if exists is not None:
            raise AlreadyExists(f"{key.name} already exists", reason="API_KEY_ID_TAKEN")
        try:
            await self._insert_key(key)
        except IntegrityError as exc:
            raise AlreadyExists(f"{key.name} already exists", reason="API_KEY_ID_TAKEN") from exc

    async def _insert_key(self, key: ApiKey) -> None:
        await self.conn.execute(
            sa.insert(api_keys).values(
                key_id=key.key_id,
                secret_hash=key.secret_hash,
                principal_kind=key.principal.kind.value,
                principal_id=key.principal.id,
                display_name=key.display_name,
                creator=key.creator,
                create_time=key.create_time,
                expire_time=key.expire_time,
                revoke_time=key.revoke_time,
            )
        )
        if key.grants:
            await self.conn.execute(
                sa.insert(api_key_grants),
                [
                    {"key_id": key.key_id, "project_id": g.project_id, "role": g.role.name}
                    for g in key.grants
                ],
            )

    async def list_api_keys(
        self, after_id: str | None, limit: int, show_revoked: bool
    ) -> list[ApiKey]:
        query = sa.select(api_keys)
        if after_id is not None:
            query = query.where(K.key_id > after_id)
        if not show_revoked:
            query = query.where(K.revoke_time.is_(None))
        found = list(await self.conn.execute(query.order_by(K.key_id).limit(limit)))
        grants = await self._grants([row.key_id for row in found])
        return [_key(row, grants[row.key_id]) for row in found]

    async def revoke_api_key(self, key_id: str, now: datetime) -> None:
        await self.conn.execute(
            sa.update(api_keys)
            .where(K.key_id == key_id, K.revoke_time.is_(None))
            .values(revoke_time=now)
        )
