"""A WriteRecordsRequest checked and decoded: what the reference's WriteRequest allows,
every problem named by its JSON path (`body.batch[3].record`), nothing looked up yet.

What needs the installation (the object's write config, mappings, field names) is
checked after this, in service.py; this module only knows the request itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ampmesh.write.v1 import write_pb2
from google.protobuf import json_format

from services.domain.connectors.writes import WriteType
from services.domain.write_plan import json_value

MAX_BATCH = 100
DEADLINE_HOURS = (1, 48)
MAX_DELAY_MINUTES = (1, 1440)
SYNCHRONOUS, ASYNCHRONOUS = "synchronous", "asynchronous"
# Headers a builder may not set on the provider call: ampmesh sets them (credentials,
# framing) or they describe the hop, not the request.
_RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "cookie",
        "proxy-authorization",
        "te",
        "upgrade",
        "keep-alive",
        "expect",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")


@dataclass(frozen=True)
class RecordIn:
    """One record as the builder sent it, with where it sits in the body."""

    path: str  # `body.record` or `body.batch[i].record`
    values: dict[str, Any]
    associations: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class WriteAsk:
    """What the request asks, decoded."""

    type: WriteType
    asynchronous: bool
    # True for `record`, False for `batch` (decides the endpoints and the answer's shape).
    single: bool
    records: list[RecordIn]
    all_or_none: bool
    retry_for: timedelta
    # Auto-batching: how long a record may wait for its batch; None when not asked.
    batch_delay: timedelta | None
    headers: dict[str, str]


def _struct(message: Any) -> dict[str, Any]:
    found: dict[str, Any] = json_value(json_format.MessageToDict(message))
    return found


def decode(request: write_pb2.WriteRecordsRequest) -> tuple[WriteAsk | None, dict[str, str]]:
    """The request decoded, or None and its problems by JSON path."""
    problems: dict[str, str] = {}
    if not request.group_ref.strip():
        problems["body.groupRef"] = "is required: your identifier of the customer group"
    try:
        write_type = WriteType(request.type)
    except ValueError:
        problems["body.type"] = f"must be create, update or delete, not {request.type!r}"
        write_type = WriteType.CREATE
    mode = request.mode or SYNCHRONOUS
    if mode not in (SYNCHRONOUS, ASYNCHRONOUS):
        problems["body.mode"] = f"must be synchronous or asynchronous, not {request.mode!r}"
    asynchronous = mode == ASYNCHRONOUS
    has_record, batch = request.HasField("record"), list(request.batch)
    if has_record and batch:
        problems["body.batch"] = "give either record or batch, not both"
    elif not has_record and not batch:
        problems["body.record"] = f"give record, or batch with 1 to {MAX_BATCH} records"
    elif len(batch) > MAX_BATCH:
        problems["body.batch"] = f"holds {len(batch)} records; at most {MAX_BATCH} per request"
    if write_type is WriteType.DELETE:
        if asynchronous:
            problems["body.mode"] = "deletes are synchronous only"
        if batch:
            problems["body.batch"] = "deletes take one record (record.id), not a batch"
    if request.HasField("batch_policy") and not batch:
        problems["body.batchPolicy"] = "applies to batch writes only"
    if request.associations and not has_record:
        problems["body.associations"] = (
            "belongs to a single record; a batch gives them per record (batch[i].associations)"
        )
    retry_for = timedelta(hours=1)
    if request.HasField("retry_policy") and request.retry_policy.HasField("deadline_hours"):
        hours = request.retry_policy.deadline_hours
        if not DEADLINE_HOURS[0] <= hours <= DEADLINE_HOURS[1]:
            problems["body.retryPolicy.deadlineHours"] = (
                f"must be between {DEADLINE_HOURS[0]} and {DEADLINE_HOURS[1]}, not {hours}"
            )
        retry_for = timedelta(hours=hours)
    batch_delay = _auto_batch(request, asynchronous, has_record, write_type, problems)
    if batch_delay is not None and request.auto_batch_policy.HasField("retry_deadline_hours"):
        retry_for = timedelta(hours=request.auto_batch_policy.retry_deadline_hours)
    headers = _headers(request, problems)
    if problems:
        return None, problems
    records = (
        [
            RecordIn(
                "body.record",
                _struct(request.record),
                [_struct(item) for item in request.associations],
            )
        ]
        if has_record
        else [
            RecordIn(
                f"body.batch[{index}].record",
                _struct(item.record),
                [_struct(each) for each in item.associations],
            )
            for index, item in enumerate(batch)
        ]
    )
    return (
        WriteAsk(
            type=write_type,
            asynchronous=asynchronous,
            single=has_record,
            records=records,
            all_or_none=request.batch_policy.all_or_none,
            retry_for=retry_for,
            batch_delay=batch_delay,
            headers=headers,
        ),
        {},
    )


def _auto_batch(
    request: write_pb2.WriteRecordsRequest,
    asynchronous: bool,
    has_record: bool,
    write_type: WriteType,
    problems: dict[str, str],
) -> timedelta | None:
    if not request.HasField("auto_batch_policy"):
        return None
    policy = request.auto_batch_policy
    where = "body.autoBatchPolicy"
    if not asynchronous or not has_record:
        problems[where] = "applies to asynchronous single-record writes only (mode, record)"
    if write_type is WriteType.DELETE:
        problems[where] = "deletes are not batched"
    if request.headers:
        problems["body.headers"] = (
            "cannot be combined with autoBatchPolicy: records of many requests are written "
            "in one provider call"
        )
    low, high = MAX_DELAY_MINUTES
    if not low <= policy.max_delay_minutes <= high:
        problems[f"{where}.maxDelayMinutes"] = (
            f"must be between {low} and {high} minutes, not {policy.max_delay_minutes}"
        )
    if policy.HasField("retry_deadline_hours"):
        hours = policy.retry_deadline_hours
        if not DEADLINE_HOURS[0] <= hours <= DEADLINE_HOURS[1]:
            problems[f"{where}.retryDeadlineHours"] = (
                f"must be between {DEADLINE_HOURS[0]} and {DEADLINE_HOURS[1]}, not {hours}"
            )
    return timedelta(minutes=policy.max_delay_minutes)


def _headers(request: write_pb2.WriteRecordsRequest, problems: dict[str, str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for index, header in enumerate(request.headers):
        where = f"body.headers[{index}]"
        if not _TOKEN.match(header.key):
            problems[f"{where}.key"] = "must be an HTTP header name (letters, digits, -)"
        elif header.key.lower() in _RESERVED_HEADERS:
            problems[f"{where}.key"] = f"{header.key} is set by ampmesh, not by the request"
        elif not header.value.isprintable() or len(header.value) > 4096:
            problems[f"{where}.value"] = "must be printable text of at most 4096 characters"
        else:
            headers[header.key] = header.value
    return headers
