"""The pure parts of the write workflows: batching decisions, outputs and failure
messages (workflows.py), the contract's messages as the writer's batch and back
(records.py), what a retried attempt infers from its predecessor's heartbeat
(provider.py), and the events an operation publishes (events.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ampmesh.events.v1 import operation_events_pb2 as ops
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from google.protobuf import json_format
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from services.domain.connectors.base import ProviderUnavailable
from services.domain.connectors.writes import ItemOutcome, WriteOutcome, WriteType
from services.temporal.writes import events, records
from services.temporal.writes.context import WriteContext
from services.temporal.writes.provider import (
    WRITER_MAX_WAIT,
    definitely_unwritten,
    earlier_may_have_written,
    writer_wait,
)
from services.temporal.writes.workflows import (
    CANCELLED_ERROR,
    DEFAULT_RETRY_WINDOW,
    batch_deadline,
    batch_request,
    failed_output,
    failure_message,
    finish_output,
    retry_deadline,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TARGET = target_pb2.ObjectTarget(
    project_id="p1",
    integration_id="g1",
    installation_id="i1",
    connection_id="c1",
    provider="hubspot",
    object_name="contacts",
)


def queued(
    operation: str,
    *,
    record_id: str = "",
    flush_in: float = 600,
    deadline_in: float | None = 3600,
    asked_ago: float = 0,
) -> writes_pb2.QueuedWrite:
    made = writes_pb2.QueuedWrite(operation_id=operation, shown_object_name="Contact")
    made.record.record_id = record_id
    made.record.record.update({"email": f"{operation}@example.com"})
    made.meta.project_id = "p1"
    made.meta.time.FromDatetime(NOW - timedelta(seconds=asked_ago))
    made.flush_time.FromDatetime(NOW + timedelta(seconds=flush_in))
    if deadline_in is not None:
        made.retry_deadline.FromDatetime(NOW + timedelta(seconds=deadline_in))
    return made


def output_of(*successes: bool) -> writes_pb2.AsyncWriteOutput:
    output = writes_pb2.AsyncWriteOutput(operation_id="op")
    for index, success in enumerate(successes):
        output.results.add(
            index=index,
            success=success,
            record_id=f"r{index}" if success else "",
            errors=[] if success else [f"refused {index}"],
        )
    return finish_output(output)


# --- batching ----------------------------------------------------------------------------


def test_a_batch_retries_until_the_latest_deadline_of_its_records() -> None:
    batch = [queued("a", deadline_in=60), queued("b", deadline_in=7200), queued("c")]
    assert batch_deadline(batch, NOW) == NOW + timedelta(seconds=7200)
    # No deadline: an hour after the record was asked for.
    undated = [queued("d", deadline_in=None, asked_ago=600)]
    assert batch_deadline(undated, NOW) == NOW - timedelta(seconds=600) + DEFAULT_RETRY_WINDOW


def test_a_batch_is_written_in_batch_form_under_its_first_records_meta() -> None:
    batch = [queued("a", record_id="1"), queued("b", record_id="2")]
    request = batch_request(TARGET, writes_pb2.WRITE_TYPE_UPDATE, batch, NOW)
    assert request.batch and not request.all_or_none
    assert [r.record_id for r in request.records] == ["1", "2"]
    assert request.operation_id == "a" and request.meta.project_id == "p1"
    assert request.retry_deadline.ToDatetime(tzinfo=UTC) == NOW


def test_a_requests_deadline_defaults_to_an_hour_after_it_was_asked() -> None:
    request = writes_pb2.AsyncWriteInput()
    assert retry_deadline(request, NOW) == NOW + DEFAULT_RETRY_WINDOW
    request.meta.time.FromDatetime(NOW - timedelta(minutes=10))
    assert retry_deadline(request, NOW) == NOW + timedelta(minutes=50)
    request.retry_deadline.FromDatetime(NOW + timedelta(hours=5))
    assert retry_deadline(request, NOW) == NOW + timedelta(hours=5)


# --- outputs and failures ----------------------------------------------------------------


def test_an_output_totals_its_records_and_lists_each_error_once() -> None:
    output = output_of(True, False, True)
    output.results[1].errors.append("refused 1")
    output = finish_output(output)
    assert (output.success, output.success_count, output.failure_count) == (False, 2, 1)
    assert list(output.successful_record_ids) == ["r0", "r2"]
    assert list(output.errors) == ["refused 1"]
    assert finish_output(output_of(True)).success
    assert not finish_output(writes_pb2.AsyncWriteOutput()).success  # nothing written


def test_a_failed_call_fails_every_record_with_one_message() -> None:
    request = writes_pb2.AsyncWriteInput(operation_id="op")
    request.records.add()
    request.records.add()
    output = failed_output(request, "gone")
    assert [(r.index, r.success, list(r.errors)) for r in output.results] == [
        (0, False, ["gone"]),
        (1, False, ["gone"]),
    ]
    assert list(output.errors) == ["gone"] and output.failure_count == 2


def activity_error(cause: BaseException, retry_state: RetryState) -> ActivityError:
    error = ActivityError(
        "activity failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="w",
        activity_type="write_records",
        activity_id="1",
        retry_state=retry_state,
    )
    error.__cause__ = cause
    return error


def test_the_deadline_names_the_last_provider_error() -> None:
    last = ApplicationError("POST /crm answered 429 RATE_LIMITS: slow down")
    # Retries that would overrun the deadline stop with the last error itself...
    assert failure_message(activity_error(last, RetryState.TIMEOUT)) == (
        "gave up at the retry deadline: POST /crm answered 429 RATE_LIMITS: slow down",
        False,
    )
    # ...the deadline passing mid-wait, with it under the timeout.
    timeout = TimeoutError(
        "activity ScheduleToClose timeout",
        type=TimeoutType.SCHEDULE_TO_CLOSE,
        last_heartbeat_details=[],
    )
    timeout.__cause__ = last
    message, _ = failure_message(activity_error(timeout, RetryState.TIMEOUT))
    assert message.endswith("answered 429 RATE_LIMITS: slow down")
    bare = TimeoutError(
        "activity ScheduleToClose timeout",
        type=TimeoutType.SCHEDULE_TO_CLOSE,
        last_heartbeat_details=[],
    )
    message, _ = failure_message(activity_error(bare, RetryState.TIMEOUT))
    assert message == "gave up at the retry deadline: the provider had not answered"


def test_a_write_past_its_deadline_gives_up_after_its_one_attempt() -> None:
    last = ApplicationError("POST /crm answered 503: down")
    error = activity_error(last, RetryState.MAXIMUM_ATTEMPTS_REACHED)
    assert failure_message(error, past_deadline=True) == (
        "gave up at the retry deadline: POST /crm answered 503: down",
        False,
    )
    # A refusal for good is one whenever it comes.
    gone = ApplicationError("installation i1 is gone", non_retryable=True)
    refused = activity_error(gone, RetryState.NON_RETRYABLE_FAILURE)
    assert failure_message(refused, past_deadline=True) == ("installation i1 is gone", False)


def test_a_refusal_for_good_keeps_its_message_and_a_cancel_says_so() -> None:
    gone = ApplicationError("installation i1 is gone", non_retryable=True)
    assert failure_message(activity_error(gone, RetryState.NON_RETRYABLE_FAILURE)) == (
        "installation i1 is gone",
        False,
    )
    assert failure_message(activity_error(CancelledError("x"), RetryState.CANCEL_REQUESTED)) == (
        CANCELLED_ERROR,
        True,
    )


# --- what an attempt knows of the one before ---------------------------------------------


def test_a_first_attempt_writes_as_if_nothing_was_written() -> None:
    assert not earlier_may_have_written(1, [])


def test_a_retry_after_a_call_in_flight_or_an_unreported_death_may_find_its_records() -> None:
    assert earlier_may_have_written(2, [{"in_flight": True, "may_have_written": False}])
    assert earlier_may_have_written(2, [])  # died before its first heartbeat got out
    assert earlier_may_have_written(2, ["garbage"])
    # An attempt that got a 429 wrote nothing, but one before it may have.
    assert not earlier_may_have_written(3, [{"in_flight": False, "may_have_written": False}])
    assert earlier_may_have_written(3, [{"in_flight": False, "may_have_written": True}])


def test_only_a_429_says_the_provider_wrote_nothing() -> None:
    assert definitely_unwritten(
        ProviderUnavailable("POST /crm/v3/objects/contacts answered 429 RATE_LIMITS: wait")
    )
    assert not definitely_unwritten(ProviderUnavailable("POST /x answered 503: down"))
    assert not definitely_unwritten(ProviderUnavailable("POST /x failed: ServerDisconnectedError"))


def test_the_writer_waits_less_near_the_deadline() -> None:
    assert writer_wait(NOW + timedelta(hours=1), NOW) == WRITER_MAX_WAIT
    assert writer_wait(NOW + timedelta(seconds=12), NOW) == 7.0
    assert writer_wait(NOW + timedelta(seconds=3), NOW) == 0.0
    assert writer_wait(NOW - timedelta(seconds=3), NOW) == 0.0


# --- records -----------------------------------------------------------------------------


def test_a_request_becomes_the_writers_batch_with_whole_numbers_as_ints() -> None:
    request = writes_pb2.AsyncWriteInput(type=writes_pb2.WRITE_TYPE_UPDATE, target=TARGET)
    record = request.records.add(record_id="42")
    record.record.update({"employees": 5, "ratio": 0.5, "tags": [1, "a"], "gone": None})
    record.associations.add().update({"to": {"id": "9"}, "types": [{"associationTypeId": 279}]})
    request.headers.add(key="Sforce-Auto-Assign", value="FALSE")
    request.all_or_none = True
    batch = records.write_batch(request, may_have_written=True)
    assert batch.object_name == "contacts" and batch.type is WriteType.UPDATE
    assert batch.single and batch.all_or_none and batch.may_have_written
    (item,) = batch.items
    assert item.record_id == "42"
    assert item.fields == {"employees": 5, "ratio": 0.5, "tags": [1, "a"], "gone": None}
    assert isinstance(item.fields["employees"], int)
    assert item.associations == [{"to": {"id": "9"}, "types": [{"associationTypeId": 279}]}]
    assert batch.headers == {"Sforce-Auto-Assign": "FALSE"}
    request.batch = True
    assert not records.write_batch(request, may_have_written=False).single


def test_a_request_without_a_write_type_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="type: 0 is not a write type"):
        records.write_batch(writes_pb2.AsyncWriteInput(), may_have_written=False)


def test_the_writers_outcome_becomes_the_output_in_request_order() -> None:
    request = writes_pb2.AsyncWriteInput(operation_id="op")
    for _ in range(3):
        request.records.add()
    outcome = WriteOutcome(
        items=[
            ItemOutcome(success=True, record_id="101", data={"id": "101", "n": 1}),
            ItemOutcome(success=False, errors=['Property "x" does not exist']),
        ]
    )
    output = records.write_output(request, outcome)
    assert [(r.index, r.success, r.record_id) for r in output.results] == [
        (0, True, "101"),
        (1, False, ""),
        (2, False, ""),
    ]
    assert json_format.MessageToDict(output.results[0].data) == {"id": "101", "n": 1.0}
    assert list(output.results[2].errors) == [records.NO_OUTCOME]
    assert (output.success_count, output.failure_count) == (1, 2)
    assert list(output.successful_record_ids) == ["101"]


def test_a_batchs_output_splits_into_its_operations() -> None:
    operations = writes_pb2.WriteBatcherInput(
        target=TARGET, pending=[queued("a"), queued("b"), queued("c")]
    )
    output = output_of(True, False)  # the third record's result is missing
    split = records.split_output(operations, output)
    assert [o.operation_id for o in split] == ["a", "b", "c"]
    assert [(o.success, list(o.successful_record_ids)) for o in split[:2]] == [
        (True, ["r0"]),
        (False, []),
    ]
    assert all(o.results[0].index == 0 for o in split)
    assert list(split[1].errors) == ["refused 1"]
    assert not split[2].success and split[2].failure_count == 1


# --- events ------------------------------------------------------------------------------


CONTEXT = WriteContext(
    target=TARGET,
    project_id="p1",
    integration_id="g1",
    integration_name="crm",
    group_ref="grp",
    group_name="Group",
    connection_id="c1",
    consumer_ref="con",
    consumer_name="Consumer",
    workspace="",
    config_id="cfg",
)


def operation(*, batch: bool) -> events.Operation:
    request = writes_pb2.AsyncWriteInput(
        target=TARGET,
        operation_id="op1",
        type=writes_pb2.WRITE_TYPE_CREATE,
        batch=batch,
        shown_object_name="Contact",
    )
    request.meta.project_id = "p1"
    request.meta.request_id = "req-1"
    request.meta.time.FromDatetime(NOW - timedelta(seconds=90))
    return events.of_request(request)


def test_the_result_line_says_what_the_reference_says() -> None:
    assert events.result_text(operation(batch=False), output_of(True)) == "Wrote 1 record"
    failed = events.result_text(operation(batch=False), output_of(False))
    assert failed == "Write failed: refused 0"
    assert (
        events.result_text(operation(batch=True), output_of(True, True, True, False))
        == "Batch write completed (3 succeeded, 1 failed)"
    )


def test_an_operation_opens_with_the_same_created_event_the_api_stages() -> None:
    created, started = events.opening(operation(batch=True), "wf", "run", "cfg", NOW)
    assert created.meta.idempotency_key == "op1/created"
    assert created.meta.project_id == "p1" and created.meta.request_id == "req-1"
    message = created.operation_created
    assert message.action_type == ops.ACTION_TYPE_WRITE
    assert list(message.objects) == ["contacts"]
    assert (message.installation_id, message.integration_id, message.connection_id) == (
        "i1",
        "g1",
        "c1",
    )
    assert (message.workflow_id, message.workflow_run_id, message.config_id) == (
        "wf",
        "run",
        "cfg",
    )
    assert message.create_time.ToDatetime(tzinfo=UTC) == NOW - timedelta(seconds=90)
    assert started.meta.idempotency_key == "op1/log/started"
    assert started.log_entry.msg == "[Contact] Asynchronous create started"


def test_a_queued_operation_says_whom_it_was_batched_with() -> None:
    operations = writes_pb2.WriteBatcherInput(
        target=TARGET, type=writes_pb2.WRITE_TYPE_CREATE, pending=[queued("a"), queued("b")]
    )
    first, second = events.of_queue(operations)
    assert (first.operation_id, second.operation_id) == ("a", "b")
    assert not first.batch  # each was a single-record request
    line = events.started_line(first, batched_with=1)
    assert line == "[Contact] Asynchronous create started (in a batch with 1 other record)"


def test_an_operation_closes_with_finished_its_log_line_and_the_notification() -> None:
    output = output_of(True, False)
    finished, logged, notified = events.closing(operation(batch=True), CONTEXT, output, NOW)
    assert [e.meta.idempotency_key for e in (finished, logged, notified)] == [
        "op1/finished",
        "op1/log/finished",
        "op1/notification",
    ]
    done = finished.operation_finished
    assert done.status == ops.OPERATION_STATUS_FAILURE
    assert done.action_type == ops.ACTION_TYPE_WRITE
    assert (done.counts.records_written, done.counts.records_failed) == (1, 1)
    assert list(done.successful_record_ids) == ["r0"] and list(done.errors) == ["refused 1"]
    assert done.result == "Batch write completed (1 succeeded, 1 failed)"
    assert done.duration.ToTimedelta() == timedelta(seconds=90)
    assert logged.log_entry.error == "refused 1"
    assert notified.meta.type == "write.async.done"
    data = notified.notification.write_async_done.data
    assert data.HasField("success") and data.success is False
    assert (data.object_name, data.integration_name, data.group_name, data.consumer_name) == (
        "Contact",
        "crm",
        "Group",
        "Consumer",
    )
    assert (data.group_ref, data.consumer_ref, data.provider) == ("grp", "con", "hubspot")
    assert list(data.successful_record_ids) == ["r0"] and list(data.errors) == ["refused 1"]
    # Printed even when false: the JSON a destination gets says so.
    printed = json_format.MessageToDict(notified.notification)
    assert printed["writeAsyncDone"]["data"]["success"] is False


def test_a_write_whose_installation_is_gone_still_notifies_with_the_ids_it_has() -> None:
    finished, _, notified = events.closing(operation(batch=False), None, output_of(True), NOW)
    assert finished.operation_finished.status == ops.OPERATION_STATUS_SUCCESS
    data = notified.notification.write_async_done.data
    assert (data.installation_id, data.connection_id, data.integration_name) == ("i1", "c1", "")
    assert data.success is True


def test_events_go_to_the_targets_project_when_the_meta_names_none() -> None:
    request = writes_pb2.AsyncWriteInput(target=TARGET, operation_id="op2")
    (created, _) = events.opening(events.of_request(request), "wf", "run", "", NOW)
    assert created.meta.project_id == "p1"
    assert not created.operation_created.HasField("create_time")
