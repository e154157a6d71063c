"""The connection events the token-manager emits, and the `connection.*` notifications that
travel alongside them (events/v1/connection_events.proto, notifications.proto).

Each change is announced by two envelopes: the connection event (TOPIC_CONNECTIONS, which
scribe turns into history and the connection's status) and the builder-facing
notification (TOPIC_NOTIFICATIONS, which messenger routes to the builder's destinations).
Both are staged in the transaction that makes the change (services.runtime.events), so a
committed change is always announced, and a rolled-back one never is. None carries a
secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ampmesh.events.v1 import connection_events_pb2 as ce
from ampmesh.events.v1 import envelope_pb2, notifications_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.protobuf.message import Message

from services.runtime.envelopes import new_envelope
from services.token_manager.store import Row

SOURCE = "token-manager"


def context_of(row: Row) -> tm.ConnectionContext:
    return row.context


def info(row: Row, status: int | None = None) -> ce.ConnectionInfo:
    context = context_of(row)
    return ce.ConnectionInfo(
        connection_id=row.connection_id,
        provider=row.provider,
        provider_app_id=context.provider_app_id,
        group_ref=context.group_ref,
        group_name=context.group_name,
        consumer_ref=context.consumer_ref,
        consumer_name=context.consumer_name,
        provider_workspace_ref=context.provider_workspace_ref,
        auth_scheme=row.auth_scheme,  # type: ignore[arg-type]
        status=row.status if status is None else status,  # type: ignore[arg-type]
    )


def _data(row: Row) -> notifications_pb2.ConnectionData:
    context = context_of(row)
    return notifications_pb2.ConnectionData(
        project_id=row.project_id,
        connection_id=row.connection_id,
        provider=row.provider,
        group_ref=context.group_ref,
        consumer_ref=context.consumer_ref,
        consumer_name=context.consumer_name,
    )


def _announce(
    row: Row,
    what: str,
    event: Message,
    request_id: str,
    data: Message | None = None,
) -> list[envelope_pb2.Envelope]:
    """The event `connection_<what>` and its notification `connection.<what>` (whose data
    is the connection's, unless given).

    The key names the row's version (each write moves it on), so a redelivery stays one
    event and two writes are two; the notification's key has a suffix of its own, since
    consumers deduplicate per (project, key)."""
    field = f"connection_{what}"
    note = notifications_pb2.Notification()
    typed = getattr(note, field)
    typed.notification_type = f"connection.{what}"
    typed.data.CopyFrom(data if data is not None else _data(row))
    key = f"connection/{row.connection_id}/v{row.version}/{what}"
    common = {"project_id": row.project_id, "source": SOURCE, "request_id": request_id}
    return [
        new_envelope(idempotency_key=key, **common, **{field: event}),  # type: ignore[arg-type]
        new_envelope(idempotency_key=f"{key}/notification", **common, notification=note),  # type: ignore[arg-type]
    ]


def created(row: Row, request_id: str = "") -> list[envelope_pb2.Envelope]:
    event = ce.ConnectionCreated(connection=info(row))
    event.create_time.FromDatetime(row.created_at)
    return _announce(row, "created", event, request_id)


def updated(row: Row, fields: Sequence[str], request_id: str = "") -> list[envelope_pb2.Envelope]:
    event = ce.ConnectionUpdated(connection=info(row), updated_fields=list(fields))
    return _announce(row, "updated", event, request_id)


def deleted(
    row: Row, revoked: bool, detail: str = "", request_id: str = ""
) -> list[envelope_pb2.Envelope]:
    """detail: why the credentials were not revoked at the provider, when they were not."""
    event = ce.ConnectionDeleted(
        connection=info(row), revoked_at_provider=revoked, revocation_detail=detail
    )
    data = _data(row)
    # Set even when false: the builder learns that the provider may still honour them.
    data.revoked_at_provider = revoked
    data.revocation_detail = detail
    return _announce(row, "deleted", event, request_id, data)


def refreshed(
    row: Row,
    *,
    trigger: int,
    rotated: bool,
    recovered: bool,
    latency: float,
    expires: datetime | None,
    request_id: str = "",
) -> list[envelope_pb2.Envelope]:
    event = ce.ConnectionRefreshed(
        connection=info(row),
        trigger=trigger,  # type: ignore[arg-type]
        refresh_token_rotated=rotated,
        recovered=recovered,
    )
    event.provider_latency.FromNanoseconds(int(latency * 1e9))
    if expires is not None:
        event.access_token_expire_time.FromDatetime(expires)
    return _announce(row, "refreshed", event, request_id)


def error(
    row: Row,
    *,
    kind: int,
    message: str,
    previous_status: int,
    status_code: int,
    oauth_error: str,
    will_retry: bool,
    request_id: str = "",
) -> list[envelope_pb2.Envelope]:
    event = ce.ConnectionError(
        connection=info(row),
        kind=kind,  # type: ignore[arg-type]
        errors=[message],
        provider_status_code=status_code,
        provider_error=oauth_error,
        previous_status=previous_status,  # type: ignore[arg-type]
        will_retry=will_retry,
    )
    context = context_of(row)
    data = notifications_pb2.ConnectionErrorData(
        project_id=row.project_id,
        connection_id=row.connection_id,
        provider=row.provider,
        group_ref=context.group_ref,
        consumer_ref=context.consumer_ref,
        consumer_name=context.consumer_name,
        errors=[message],
        error=[message],
    )
    return _announce(row, "error", event, request_id, data)
