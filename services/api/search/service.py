"""The Search API (the search host): one provider page of the records of an object whose
fields equal the given values, looked up in a customer's SaaS instance while the caller
waits (HubSpot's CRM search, a SOQL WHERE: services/domain/connectors/search.py).

Only objects the installation reads can be searched, through its connection, with the
read plan its reads use (services/domain/read_plan.py): the object and its filters may
be named by their provider names or the installation's mapped names, only fields it
reads may be filtered on, and each record comes back as a read delivers it (fields,
mappedFields, raw: services/domain/record_shape.py). The reference's answer has no place
for a next page, so none is given.

Only builders call it (`full` keys): it spends the customer's provider quota.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import asyncpg
import grpc
from ampmesh.search.v1 import search_pb2, search_pb2_grpc
from ampmesh.workflows.v1.read_plan_pb2 import ReadPlan

from services.api.common import abort_invalid, abort_missing
from services.api.context import ApiContext
from services.api.provider_calls import call_provider
from services.api.stored import (
    INSTALLATION_KIND,
    INTEGRATION_KIND,
    config_content,
    find_integration,
    integration_content,
)
from services.domain.connectors.registry import CONNECTORS, SEARCHERS
from services.domain.connectors.search import FilterValue, SearchRequest
from services.domain.read_plan import configured_plans, find_plan
from services.domain.record_shape import plan_selection, result_entry
from services.runtime.errors import abort_not_found, abort_with_reason
from services.runtime.server import Service

# The installation of a group with its newest config, the revision that config was
# saved against (the plan comes from them) and its connection.
_INSTALLATION = """
    SELECT i.id, c.content, c.id::text AS config_id, r.content AS revision_content,
           n.id AS connection_id, n.provider, n.provider_workspace_ref
    FROM installations i
    LEFT JOIN LATERAL (
        SELECT id, revision_id, content FROM configs WHERE installation_id = i.id
        ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN revisions r ON r.id = c.revision_id
    LEFT JOIN connections n ON n.id = i.connection_id
    WHERE i.integration_id = $1 AND i.group_ref = $2
"""
OPERATORS = ("eq",)


class SearchApi(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def SearchRecords(
        self, request: search_pb2.SearchRecordsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.SearchRecordsResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        integration = await find_integration(self.ctx.pool, project.id, request.integration_id)
        if integration is None:
            await abort_missing(context, INTEGRATION_KIND, request.integration_id)
        values = await _checked_request(context, request)
        row = await self.ctx.pool.fetchrow(_INSTALLATION, integration["id"], request.group_ref)
        if row is None:
            await abort_not_found(
                context,
                INSTALLATION_KIND,
                request.group_ref,
                f"group {request.group_ref!r} has no installation of integration "
                f"{integration['name']!r}",
            )
        plan = await _plan(context, row, request.query.object_name)
        equals = await _provider_filters(context, plan, request.query.field_filters, values)
        if row["connection_id"] is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                "the installation has no connection to search through: set its connectionId",
                "NO_CONNECTION",
            )
        provider = row["provider"]
        searcher, connector = SEARCHERS.get(provider), CONNECTORS.get(provider)
        if searcher is None or connector is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"ampmesh cannot search {provider!r} records (it searches "
                f"{', '.join(sorted(SEARCHERS))})",
                "SEARCH_NOT_SUPPORTED",
            )
        if len(equals) > searcher.max_filters:
            await abort_invalid(
                context,
                {
                    "body.fieldFilters": f"{provider} takes at most {searcher.max_filters} "
                    f"filters in one search; {len(equals)} were given"
                },
            )
        selection = plan_selection(plan.selection)
        search = SearchRequest(plan.object_name, equals, selection.provider_fields())
        records = await call_provider(
            self.ctx,
            context,
            project_id=project.id,
            connection={
                "id": row["connection_id"],
                "provider": provider,
                "provider_workspace_ref": row["provider_workspace_ref"],
            },
            call=lambda http, auth: searcher.search(http, auth, search),
            doing=f"search {plan.object_name} records",
        )
        answer = search_pb2.SearchRecordsResponse()
        for raw in records:
            entry = result_entry(connector, raw, selection)
            found = answer.result.add()
            # Present even when empty, as in read deliveries.
            found.fields.SetInParent()
            found.mapped_fields.SetInParent()
            found.fields.update(entry["fields"])
            found.mapped_fields.update(entry["mappedFields"])
            found.raw.update(raw)
        return answer


async def _checked_request(
    context: Any, request: search_pb2.SearchRecordsRequest
) -> list[FilterValue]:
    """Every problem of the request's own fields at once (INVALID_ARGUMENT naming each);
    the filter values as plain Python values."""
    problems: dict[str, str] = {}
    if not request.group_ref.strip():
        problems["query.groupRef"] = "is required: your identifier of the customer group"
    if not request.query.object_name.strip():
        problems["body.objectName"] = "is required: the object to search"
    if not request.query.field_filters:
        problems["body.fieldFilters"] = "needs at least one filter: a search by field values"
    values: list[FilterValue] = []
    for index, given in enumerate(request.query.field_filters):
        at = f"body.fieldFilters[{index}]"
        if not given.field_name.strip():
            problems[f"{at}.fieldName"] = "is required"
        if given.operator not in OPERATORS:
            problems[f"{at}.operator"] = (
                f"must be one of {', '.join(OPERATORS)} (found {given.operator!r})"
            )
        kind = given.value.WhichOneof("kind") if given.HasField("value") else None
        value: FilterValue = ""
        if kind == "string_value":
            value = given.value.string_value
        elif kind == "bool_value":
            value = given.value.bool_value
        elif kind == "number_value" and math.isfinite(given.value.number_value):
            number = given.value.number_value
            value = int(number) if number.is_integer() and abs(number) < 2**53 else number
        else:
            problems[f"{at}.value"] = "is required: a string, a boolean or a number"
        values.append(value)
    if problems:
        await abort_invalid(context, problems)
    return values


async def _plan(context: Any, row: asyncpg.Record, object_name: str) -> ReadPlan:
    """The read plan of the object the search names (provider or mapped name), among
    those the installation's config reads; INVALID_ARGUMENT naming body.objectName
    otherwise."""
    plans: dict[str, ReadPlan] = {}
    if row["content"] is not None and row["revision_content"] is not None:
        plans = configured_plans(
            integration_content(row["revision_content"]),
            config_content(row["content"]),
            config_id=row["config_id"],
        )
    read = {name: plan for name, plan in plans.items() if plan.declared}
    plan = find_plan(read, object_name)
    if plan is None:
        listed = ", ".join(sorted(read)) or "no object"
        await abort_invalid(
            context,
            {
                "body.objectName": f"{object_name!r} is not an object this installation "
                f"reads (it reads {listed}); only those can be searched"
            },
        )
    if plan.disabled:
        await abort_invalid(
            context,
            {
                "body.objectName": f"reads of object {plan.object_name!r} are disabled in "
                "this installation's config, so it cannot be searched"
            },
        )
    return plan


async def _provider_filters(
    context: Any,
    plan: ReadPlan,
    filters: Sequence[search_pb2.FieldFilter],
    values: Sequence[FilterValue],
) -> list[tuple[str, FilterValue]]:
    """The filters with the provider's field names: a mapped name becomes the provider
    field mapped to it; a provider name must be one the installation reads (any, when
    it reads all fields). INVALID_ARGUMENT naming each field that is neither."""
    selection = plan.selection
    mapped = {m.map_to_name: m.field_name for m in selection.mappings}
    readable = set(selection.fields) | set(mapped.values())
    spelled = {name.lower(): name for name in selection.requested_fields}
    equals: list[tuple[str, FilterValue]] = []
    problems: dict[str, str] = {}
    for index, (given, value) in enumerate(zip(filters, values, strict=True)):
        name = given.field_name
        if name in mapped:
            lowered = mapped[name]
        elif selection.all_fields or name.lower() in readable:
            lowered = name.lower()
        else:
            known = sorted(readable | set(mapped))
            problems[f"body.fieldFilters[{index}].fieldName"] = (
                f"{name!r} is not a field this installation reads of object "
                f"{plan.object_name!r} (it reads {', '.join(known) or 'no field'})"
            )
            continue
        equals.append((spelled.get(lowered, name), value))
    if problems:
        await abort_invalid(context, problems)
    return equals


def service(ctx: ApiContext) -> Service:
    return Service.from_servicer(
        search_pb2.DESCRIPTOR.services_by_name["SearchService"],
        search_pb2_grpc.add_SearchServiceServicer_to_server,
        SearchApi(ctx),
    )
