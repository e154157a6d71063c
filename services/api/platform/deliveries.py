"""A webhook destination's deliveries and endpoint (DeliveryService), for builders.

Messenger keeps the deliveries (webhook_deliveries, their attempts, the endpoints'
state) and does the sending; this servicer is the public door to its MessengerService.
Each call checks the caller (builders only, as for destinations), finds the destination
in the caller's project (by id or name; only webhook destinations have deliveries),
checks what messenger's own checks would name in its request's terms, then asks
messenger with the api's certificate and answers what it answered.

A delivery named in the path must be the destination's: another destination's delivery
is NOT_FOUND, as another project's is. Without a messenger address the RPCs answer
UNAVAILABLE; messenger's own errors pass through with their code and message.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from ampmesh.messenger.v1 import messenger_pb2 as pb
from ampmesh.platform.v1 import deliveries_pb2, deliveries_pb2_grpc
from google.protobuf.message import Message

from services.api.auth import is_uuid
from services.api.common import abort_invalid, abort_missing
from services.api.context import ApiContext
from services.api.platform.destinations import WEBHOOK, find_destination
from services.runtime.errors import (
    STATUS_DETAILS_KEY,
    abort_with_details,
    abort_with_reason,
    error_info,
)
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

# Messenger reads PostgreSQL only, except TestDestination, which waits for the receiver
# (messenger's delivery timeout, 10 s by default).
CALL_TIMEOUT = 10.0
TEST_TIMEOUT = 30.0
MAX_PAGE_SIZE = 1000


class Deliveries(deliveries_pb2_grpc.DeliveryServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _webhook(
        self, context: Any, project_id_or_name: str, destination_id_or_name: str
    ) -> tuple[str, str]:
        """(project id, destination id) of a webhook destination of the caller's project."""
        project = await self.ctx.auth.builder_project(context, project_id_or_name)
        row = await find_destination(self.ctx.pool, project.id, destination_id_or_name)
        if row is None:
            await abort_missing(context, "destination", destination_id_or_name)
        if row["type"] != WEBHOOK:
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"destination {destination_id_or_name!r} is a {row['type']} destination: "
                "only webhook destinations have deliveries",
                "NOT_A_WEBHOOK",
            )
        return project.id, str(row["id"])

    async def _ask(
        self, context: Any, method: str, request: Message, wait: float = CALL_TIMEOUT
    ) -> Any:
        """Messenger's answer to method(request); its errors end the call as they ended
        ours."""
        if self.ctx.messenger is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "deliveries are unavailable: this api has no messenger address",
                "MESSENGER_UNAVAILABLE",
            )
        try:
            return await getattr(self.ctx.messenger, method)(request, timeout=wait)
        except grpc.aio.AioRpcError as error:
            await _relay(context, error)

    async def _delivery_of(
        self,
        context: Any,
        project_id: str,
        destination_id: str,
        delivery_id: str,
        include_body: bool = False,
    ) -> pb.Delivery:
        """The delivery, which must be the destination's (NOT_FOUND otherwise)."""
        delivery: pb.Delivery = await self._ask(
            context,
            "GetDelivery",
            pb.GetDeliveryRequest(
                project_id=project_id, delivery_id=delivery_id, include_body=include_body
            ),
        )
        if delivery.destination_id != destination_id:
            await abort_missing(context, "delivery", delivery_id)
        return delivery

    async def ListDeliveries(
        self, request: deliveries_pb2.ListDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeliveriesResponse:
        project_id, destination_id = await self._webhook(
            context, request.project_id_or_name, request.destination_id_or_name
        )
        problems = _filter_problems(request, "query")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            problems["query.pageSize"] = f"must be between 0 and {MAX_PAGE_SIZE}"
        if problems:
            await abort_invalid(context, problems)
        asked = pb.ListDeliveriesRequest(
            project_id=project_id,
            destination_id=destination_id,
            operation_id=request.operation_id,
            status=request.status,
            kind=request.kind,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        _copy_window(request, asked)
        answer: pb.ListDeliveriesResponse = await self._ask(context, "ListDeliveries", asked)
        return answer

    async def GetDelivery(
        self, request: deliveries_pb2.GetDeliveryRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delivery:
        project_id, destination_id = await self._webhook(
            context, request.project_id_or_name, request.destination_id_or_name
        )
        return await self._delivery_of(
            context, project_id, destination_id, request.delivery_id, request.include_body
        )

    async def RedeliverDelivery(
        self, request: deliveries_pb2.RedeliverDeliveryRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delivery:
        project_id, destination_id = await self._webhook(
            context, request.project_id_or_name, request.destination_id_or_name
        )
        await self._delivery_of(context, project_id, destination_id, request.delivery_id)
        delivery: pb.Delivery = await self._ask(
            context,
            "RedeliverDelivery",
            pb.RedeliverDeliveryRequest(project_id=project_id, delivery_id=request.delivery_id),
        )
        return delivery

    async def ReplayDeliveries(
        self, request: deliveries_pb2.ReplayDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReplayDeliveriesResponse:
        project_id, destination_id = await self._webhook(
            context, request.project_id_or_name, request.destination_id_or_name
        )
        problems = _filter_problems(request, "body")
        known = set(pb.DeliveryStatus.values()) - {pb.DELIVERY_STATUS_UNSPECIFIED}
        if any(status not in known for status in request.statuses):
            problems["body.statuses"] = "must name delivery statuses (for example FAILED)"
        if problems:
            await abort_invalid(context, problems)
        asked = pb.ReplayDeliveriesRequest(
            project_id=project_id,
            destination_id=destination_id,
            operation_id=request.operation_id,
            statuses=request.statuses,
            dry_run=request.dry_run,
        )
        _copy_window(request, asked)
        answer: pb.ReplayDeliveriesResponse = await self._ask(context, "ReplayDeliveries", asked)
        return answer

    async def GetEndpoint(
        self, request: deliveries_pb2.GetEndpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.Endpoint:
        project_id, destination_id = await self._webhook(
            context, request.project_id_or_name, request.destination_id_or_name
        )
        endpoint: pb.Endpoint = await self._ask(
            context,
            "GetEndpoint",
            pb.GetEndpointRequest(project_id=project_id, destination_id=destination_id),
        )
        return endpoint

    async def EnableEndpoint(
        self, request: deliveries_pb2.EnableEndpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.Endpoint:
        project_id, destination_id = await self._webhook(
            context, request.project_id_or_name, request.destination_id_or_name
        )
        endpoint: pb.Endpoint = await self._ask(
            context,
            "EnableEndpoint",
            pb.EnableEndpointRequest(
                project_id=project_id,
                destination_id=destination_id,
                discard_held=request.discard_held,
            ),
        )
        return endpoint

    async def TestDestination(
        self, request: deliveries_pb2.TestDestinationRequest, context: grpc.aio.ServicerContext
    ) -> pb.TestDestinationResponse:
        project_id, destination_id = await self._webhook(
            context, request.project_id_or_name, request.destination_id_or_name
        )
        answer: pb.TestDestinationResponse = await self._ask(
            context,
            "TestDestination",
            pb.TestDestinationRequest(
                project_id=project_id,
                destination_id=destination_id,
                event_type=request.event_type,
            ),
            wait=TEST_TIMEOUT,
        )
        return answer


def _filter_problems(
    request: deliveries_pb2.ListDeliveriesRequest | deliveries_pb2.ReplayDeliveriesRequest,
    where: str,
) -> dict[str, str]:
    """What is wrong with the operation and time window a list or replay filters on."""
    problems: dict[str, str] = {}
    if request.operation_id and not is_uuid(request.operation_id):
        problems[f"{where}.operationId"] = "is not an operation id"
    if (
        request.HasField("start_time")
        and request.HasField("end_time")
        and request.end_time.ToDatetime() <= request.start_time.ToDatetime()
    ):
        problems[f"{where}.endTime"] = "must be after startTime"
    return problems


def _copy_window(
    given: deliveries_pb2.ListDeliveriesRequest | deliveries_pb2.ReplayDeliveriesRequest,
    asked: pb.ListDeliveriesRequest | pb.ReplayDeliveriesRequest,
) -> None:
    if given.HasField("start_time"):
        asked.start_time.CopyFrom(given.start_time)
    if given.HasField("end_time"):
        asked.end_time.CopyFrom(given.end_time)


async def _relay(context: Any, error: grpc.aio.AioRpcError) -> NoReturn:
    """End the call as messenger ended ours: its code, message and error details."""
    code = error.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        await abort_with_details(
            context,
            grpc.StatusCode.UNAVAILABLE,
            "messenger, which keeps the deliveries, did not answer; try again",
            error_info("MESSENGER_UNAVAILABLE"),
        )
    details = tuple(
        (key, value) for key, value in error.trailing_metadata() or () if key == STATUS_DETAILS_KEY
    )
    await context.abort(code, error.details() or "", trailing_metadata=details)
    raise AssertionError("unreachable: abort raises")


def service(ctx: ApiContext) -> Service:
    return partially_built(
        deliveries_pb2.DESCRIPTOR.services_by_name["DeliveryService"],
        deliveries_pb2_grpc.add_DeliveryServiceServicer_to_server,
        Deliveries(ctx),
        "",
    )
