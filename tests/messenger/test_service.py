"""MessengerService over mTLS: every RPC, and bad inputs."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import orjson
import pytest
from ampmesh.messenger.v1 import messenger_pb2 as pb

from services.messenger.signing import delivery_id
from tests.support.messenger import Project, Running, attempts, page_envelope, settled
from tests.support.webhooks import Answer, Receiver

pytestmark = pytest.mark.e2e


async def deliver(running: Running, project: Project, destination: str, **kwargs: Any) -> str:
    envelope = page_envelope(project.id, destination, **kwargs)
    await running.consumers.read_result(envelope, {}, 1)
    return delivery_id(project.id, envelope.meta.idempotency_key, destination)


async def refused(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == code, error.value.details()
    return str(error.value.details())


async def test_list_and_get_deliveries(
    stub: Any, running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/list"), name="listed")
    receiver.secrets["/list"] = secret
    operation = str(uuid.uuid4())
    ids = [
        await deliver(running, project, destination, operation_id=operation, page=p)
        for p in (1, 2, 3)
    ]
    for delivery in ids:
        await settled(project.pool, delivery, "succeeded")

    first = await stub.ListDeliveries(pb.ListDeliveriesRequest(project_id=project.id, page_size=2))
    assert len(first.deliveries) == 2 and first.next_page_token
    rest = await stub.ListDeliveries(
        pb.ListDeliveriesRequest(
            project_id=project.id, page_size=2, page_token=first.next_page_token
        )
    )
    listed = [d.id for d in (*first.deliveries, *rest.deliveries)]
    assert sorted(listed) == sorted(ids) and not rest.next_page_token
    times = [d.create_time.ToDatetime() for d in (*first.deliveries, *rest.deliveries)]
    assert times == sorted(times, reverse=True)  # newest first
    item = first.deliveries[0]
    assert item.destination_name == "listed" and item.status == pb.DELIVERY_STATUS_SUCCEEDED
    assert item.kind == pb.DELIVERY_KIND_READ_RESULT and item.record_count == 3
    assert not item.attempts and not item.body

    by_status = await stub.ListDeliveries(
        pb.ListDeliveriesRequest(project_id=project.id, status=pb.DELIVERY_STATUS_FAILED)
    )
    assert not by_status.deliveries
    by_operation = await stub.ListDeliveries(
        pb.ListDeliveriesRequest(
            project_id=project.id, operation_id=operation, destination_id=destination
        )
    )
    assert len(by_operation.deliveries) == 3

    got = await stub.GetDelivery(
        pb.GetDeliveryRequest(project_id=project.id, delivery_id=ids[0], include_body=True)
    )
    assert orjson.loads(got.body)["operationId"] == operation
    assert len(got.attempts) == 1 and got.attempts[0].status_code == 200
    assert got.attempts[0].outcome == pb.ATTEMPT_OUTCOME_SUCCESS
    assert got.url == receiver.url("/list") and got.payload_bytes == len(got.body)


async def test_redeliver_and_replay(
    stub: Any, running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/replay"))
    receiver.secrets["/replay"] = secret
    receiver.script("/replay", Answer(400), Answer(400))
    operation = str(uuid.uuid4())
    failed = [
        await deliver(running, project, destination, operation_id=operation, page=p) for p in (1, 2)
    ]
    for delivery in failed:
        await settled(project.pool, delivery, "failed")

    dry = await stub.ReplayDeliveries(
        pb.ReplayDeliveriesRequest(project_id=project.id, operation_id=operation, dry_run=True)
    )
    assert (dry.matched, dry.scheduled) == (2, 0)
    assert len(receiver.at("/replay")) == 2

    redelivered = await stub.RedeliverDelivery(
        pb.RedeliverDeliveryRequest(project_id=project.id, delivery_id=failed[0])
    )
    assert redelivered.status == pb.DELIVERY_STATUS_SUCCEEDED
    assert [a.trigger for a in redelivered.attempts] == [
        pb.ATTEMPT_TRIGGER_AUTOMATIC,
        pb.ATTEMPT_TRIGGER_REDELIVER,
    ]

    replayed = await stub.ReplayDeliveries(
        pb.ReplayDeliveriesRequest(project_id=project.id, destination_id=destination)
    )
    assert (replayed.matched, replayed.scheduled) == (1, 1)
    await settled(project.pool, failed[1], "succeeded")
    assert [a["trigger"] for a in await attempts(project.pool, failed[1])] == [
        pb.ATTEMPT_TRIGGER_AUTOMATIC,
        pb.ATTEMPT_TRIGGER_REPLAY,
    ]
    ids = {r.headers["webhook-id"] for r in receiver.at("/replay")}
    assert ids == set(failed)  # the same message ids across replays


async def test_test_destination_sends_a_signed_sample_and_records_nothing(
    stub: Any, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(
        receiver.url("/test"), headers={"Authorization": "Bearer s3cret"}
    )
    receiver.secrets["/test"] = secret
    sample = await stub.TestDestination(
        pb.TestDestinationRequest(project_id=project.id, destination_id=destination)
    )
    assert sample.success and sample.status_code == 200
    assert sample.outcome == pb.ATTEMPT_OUTCOME_SUCCESS
    (got,) = receiver.at("/test")
    assert got.verified and got.body == sample.request_body
    assert got.headers["authorization"] == "Bearer s3cret"
    assert sample.request_headers["Authorization"] == "<redacted>"
    assert sample.request_headers["webhook-id"] == sample.message_id
    assert orjson.loads(sample.request_body)["resultInfo"]["numRecords"] == 1

    notice = await stub.TestDestination(
        pb.TestDestinationRequest(
            project_id=project.id, destination_id=destination, event_type="connection.error"
        )
    )
    assert orjson.loads(notice.request_body)["notificationType"] == "connection.error"
    recorded = await project.pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE destination_id = $1::uuid", destination
    )
    assert recorded == 0


async def test_get_endpoint(
    stub: Any, running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/endpoint"), name="ep")
    receiver.secrets["/endpoint"] = secret
    fresh = await stub.GetEndpoint(
        pb.GetEndpointRequest(project_id=project.id, destination_id=destination)
    )
    assert fresh.state == pb.ENDPOINT_STATE_ENABLED and fresh.url == receiver.url("/endpoint")
    receiver.script("/endpoint", Answer(500))
    delivery = await deliver(running, project, destination)
    await settled(project.pool, delivery, "succeeded")
    after = await stub.GetEndpoint(
        pb.GetEndpointRequest(project_id=project.id, destination_id=destination)
    )
    assert after.destination_name == "ep" and after.consecutive_failures == 0
    assert after.HasField("last_success_time") and after.HasField("last_failure_time")


async def test_bad_inputs(
    stub: Any, running: Running, project: Project, receiver: Receiver
) -> None:
    destination, _ = await project.destination(receiver.url("/bad"))
    delivery = await deliver(running, project, destination)
    other = str(uuid.uuid4())
    invalid, missing = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    assert "project_id" in await refused(stub.ListDeliveries(pb.ListDeliveriesRequest()), invalid)
    assert "project_id" in await refused(
        stub.ListDeliveries(pb.ListDeliveriesRequest(project_id="nope")), invalid
    )
    assert "page_token" in await refused(
        stub.ListDeliveries(pb.ListDeliveriesRequest(project_id=project.id, page_token="x!")),
        invalid,
    )
    assert "page_size" in await refused(
        stub.ListDeliveries(pb.ListDeliveriesRequest(project_id=project.id, page_size=-1)),
        invalid,
    )
    assert "delivery_id" in await refused(
        stub.GetDelivery(pb.GetDeliveryRequest(project_id=project.id)), invalid
    )
    # Another project's ids are not found.
    await refused(
        stub.GetDelivery(pb.GetDeliveryRequest(project_id=other, delivery_id=delivery)), missing
    )
    await refused(
        stub.RedeliverDelivery(pb.RedeliverDeliveryRequest(project_id=other, delivery_id=delivery)),
        missing,
    )
    await refused(
        stub.GetEndpoint(pb.GetEndpointRequest(project_id=other, destination_id=destination)),
        missing,
    )
    await refused(
        stub.EnableEndpoint(pb.EnableEndpointRequest(project_id=other, destination_id=destination)),
        missing,
    )
    await refused(
        stub.TestDestination(
            pb.TestDestinationRequest(project_id=other, destination_id=destination)
        ),
        missing,
    )
    assert "destination_id" in await refused(
        stub.ReplayDeliveries(pb.ReplayDeliveriesRequest(project_id=project.id)), invalid
    )
    assert "event_type" in await refused(
        stub.TestDestination(
            pb.TestDestinationRequest(
                project_id=project.id, destination_id=destination, event_type="nope.nope"
            )
        ),
        invalid,
    )
    assert "destination_id" in await refused(
        stub.GetEndpoint(pb.GetEndpointRequest(project_id=project.id)), invalid
    )
