"""RecordedPagesService: what messenger has recorded of a read's pages, for the temporal
worker, which reports a read done only once every page it published is recorded here
(and publishes again those that never arrived). Answered from webhook_deliveries: a
count by operation (its index), and which keys have no row (primary-key lookups of the
ids messenger would give them)."""

from __future__ import annotations

from typing import Any

import asyncpg
from ampmesh.messenger.v1 import messenger_pb2 as pb
from ampmesh.messenger.v1 import messenger_pb2_grpc

from services.messenger.deliveries import Deliverer
from services.messenger.rows import READ_RESULT
from services.messenger.signing import delivery_id
from services.runtime.database import is_uuid
from services.runtime.errors import abort_invalid_argument

# Keys per FindUnrecordedPages call: one statement's array stays small.
MAX_KEYS = 1000

_COUNT = """
    SELECT count(*) FROM webhook_deliveries
    WHERE project_id = $1::uuid AND operation_id = $2 AND kind = $3
"""
_EXISTING = "SELECT id FROM webhook_deliveries WHERE id = ANY($1::text[])"


class RecordedPages(messenger_pb2_grpc.RecordedPagesServiceServicer):
    def __init__(self, pool: asyncpg.Pool, deliverer: Deliverer) -> None:
        self.pool = pool
        self.deliverer = deliverer

    async def _uuid(self, context: Any, name: str, value: str) -> str:
        if not value:
            await abort_invalid_argument(context, f"{name} is required", {name: "is required"})
        if not is_uuid(value):
            await abort_invalid_argument(context, f"{name} must be a UUID", {name: "not a UUID"})
        return value

    async def CountRecordedPages(
        self, request: pb.CountRecordedPagesRequest, context: Any
    ) -> pb.CountRecordedPagesResponse:
        project_id = await self._uuid(context, "project_id", request.project_id)
        if not request.operation_id:
            await abort_invalid_argument(
                context, "operation_id is required", {"operation_id": "is required"}
            )
        recorded = await self.pool.fetchval(_COUNT, project_id, request.operation_id, READ_RESULT)
        found = False
        if request.destination_id:
            destination_id = await self._uuid(context, "destination_id", request.destination_id)
            # The same test the read-result consumer makes before recording a page.
            target = await self.deliverer.target(destination_id)
            found = target is not None and target.project_id == project_id
        return pb.CountRecordedPagesResponse(recorded=recorded or 0, destination_found=found)

    async def FindUnrecordedPages(
        self, request: pb.FindUnrecordedPagesRequest, context: Any
    ) -> pb.FindUnrecordedPagesResponse:
        project_id = await self._uuid(context, "project_id", request.project_id)
        destination_id = await self._uuid(context, "destination_id", request.destination_id)
        if len(request.keys) > MAX_KEYS:
            await abort_invalid_argument(
                context,
                f"keys holds {len(request.keys)} keys; at most {MAX_KEYS} per call",
                {"keys": f"at most {MAX_KEYS}"},
            )
        ids = {key: delivery_id(project_id, key, destination_id) for key in request.keys}
        rows = await self.pool.fetch(_EXISTING, list(ids.values()))
        existing = {row["id"] for row in rows}
        return pb.FindUnrecordedPagesResponse(
            missing_keys=[key for key, made in ids.items() if made not in existing]
        )
