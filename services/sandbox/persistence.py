"""The sandbox's state kept in a file (AMPMESH_SANDBOX_STATE_FILE), so a restart of the
sandbox, or of the whole mesh (`ampmesh up --sandbox --keep-sandbox-state`), finds its
seeded records, object schemas, issued tokens and webhook subscriptions again.

Kept: every object's records (ids, field values, times, associations) and its deleted
ones (tombstones, with their deletion time), the id sequence writes draw from, the
schemas (custom fields included), authorization codes and tokens (with their
revocations and forced expiries), and the webhook registrations (HubSpot settings and
subscriptions, Salesforce channel members and event relays, and their id sequences).
Not kept: faults, counters and change events not yet sent, which describe one test's
run rather than the provider's data.

Cheap on a store of tens of thousands of records: the file is written at most once per
`every` seconds, and only when something changed since the last write (each object's
generation, which moves on every change, and the token book's shape say so), then once
more when the sandbox stops. The snapshot is taken in the event loop (nothing mutates
meanwhile: nothing in the state awaits); encoding and writing run in a thread, to a file
beside the target renamed over it, so a kill mid-write leaves the previous one whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from services.runtime.logs import get_logger
from services.sandbox.providers import Provider
from services.sandbox.records import Record
from services.sandbox.schemas import SalesforceObject
from services.sandbox.state import SandboxState
from services.sandbox.tokens import AuthorizationCode, Token
from services.sandbox.webhooks import (
    ChannelMember,
    EventRelay,
    HubSpotSettings,
    HubSpotSubscription,
    WebhookBook,
)

_log = get_logger("ampmesh.sandbox.persistence")

VERSION = 1


def snapshot(state: SandboxState) -> dict[str, Any]:
    """Everything kept, as JSON values."""
    records = state.records
    objects = [
        {
            "provider": provider.name,
            "object": object_name,
            "records": [
                [
                    r.id,
                    r.fields,
                    r.created.isoformat(),
                    r.modified.isoformat(),
                    r.associations,
                ]
                for r in found.in_order
            ],
            "tombstones": [
                [
                    r.id,
                    r.fields,
                    r.created.isoformat(),
                    r.modified.isoformat(),
                    r.associations,
                    r.deleted.isoformat() if r.deleted else None,
                ]
                for r in found.tombstones.in_order
            ],
        }
        for provider, object_name, found in records.objects()
    ]
    tokens = state.tokens
    return {
        "version": VERSION,
        "objects": objects,
        "writeIds": _rng_state(records.write_ids.getstate()),
        "schemas": {
            "hubspot": state.schemas.hubspot,
            "salesforce": [dataclasses.asdict(o) for o in state.schemas.salesforce.values()],
        },
        "codes": [_token_json(c) for c in tokens.codes.values()],
        # Each token once, whether found by its access or its refresh token.
        "tokens": [_token_json(t) for t in {id(t): t for t in _all_tokens(state)}.values()],
        "webhooks": _webhooks_json(state.webhooks),
    }


def restore(state: SandboxState, kept: dict[str, Any]) -> int:
    """Load a snapshot into a fresh state; the number of records loaded."""
    if kept.get("version") != VERSION:
        raise ValueError(f"unknown sandbox state version {kept.get('version')!r}")
    records = state.records
    records.clear()
    loaded = 0
    for entry in kept["objects"]:
        provider = Provider[entry["provider"]]
        found = records.writable(provider, entry["object"])
        found.add(
            [
                Record(
                    record_id,
                    fields,
                    datetime.fromisoformat(created),
                    datetime.fromisoformat(modified),
                    associations=associations,
                )
                for record_id, fields, created, modified, associations in entry["records"]
            ]
        )
        loaded += len(found.in_order)
        found.tombstones.add(
            [
                Record(
                    record_id,
                    fields,
                    datetime.fromisoformat(created),
                    datetime.fromisoformat(modified),
                    associations=associations,
                    deleted=datetime.fromisoformat(deleted) if deleted else None,
                )
                for record_id, fields, created, modified, associations, deleted in entry.get(
                    "tombstones", []
                )
            ]
        )
    records.write_ids.setstate(_rng_tuple(kept["writeIds"]))
    state.schemas.hubspot = kept["schemas"]["hubspot"]
    state.schemas.salesforce = {
        o["name"]: SalesforceObject(**o) for o in kept["schemas"]["salesforce"]
    }
    tokens = state.tokens
    tokens.clear()
    for code in kept["codes"]:
        code["provider"] = Provider[code["provider"]]
        tokens.codes[code["code"]] = AuthorizationCode(**code)
    for token in kept["tokens"]:
        token["provider"] = Provider[token["provider"]]
        tokens.add(Token(**token))
    if "webhooks" in kept:
        _restore_webhooks(state.webhooks, kept["webhooks"])
    return loaded


def fingerprint(state: SandboxState) -> tuple[Any, ...]:
    """Changes whenever something kept changes; cheap (no record is looked at)."""
    objects = tuple(
        (provider, name, found.generation, len(found.in_order), len(found.tombstones.in_order))
        for provider, name, found in state.records.objects()
    )
    tokens = list(_all_tokens(state))
    flags = sum(t.access_revoked + 2 * t.refresh_revoked + 4 * t.forced_expired for t in tokens)
    schemas = (
        json.dumps(state.schemas.hubspot, sort_keys=True, default=str),
        tuple(
            (o.name, len(o.fields), tuple(o.custom_ids)) for o in state.schemas.salesforce.values()
        ),
    )
    return (
        objects,
        tuple(state.tokens.codes),
        len(tokens),
        flags,
        schemas,
        state.webhooks.version,
    )


def load(state: SandboxState, path: Path) -> None:
    """Load the file when there is one (a first start has none)."""
    if not path.exists():
        return
    try:
        kept = json.loads(path.read_text())
        loaded = restore(state, kept)
    except (OSError, ValueError, KeyError, TypeError) as error:
        # Starting empty beats not starting: the operator sees why in the log.
        _log.warning("sandbox state not loaded", path=str(path), error=str(error))
        state.records.clear()
        state.tokens.clear()
        state.webhooks.clear()
        state.schemas.reset()
        return
    _log.info("sandbox state loaded", path=str(path), records=loaded)


def write(path: Path, kept: dict[str, Any]) -> None:
    """Encode and write the snapshot whole (beside it, then renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(kept, file, separators=(",", ":"))
    os.replace(partial, path)


@contextlib.asynccontextmanager
async def kept_in(state: SandboxState, path: Path, every: float = 2.0) -> AsyncIterator[None]:
    """Load the state from path, keep the file up to date while inside, write it last."""
    load(state, path)
    written = fingerprint(state)

    async def save() -> None:
        nonlocal written
        now = fingerprint(state)
        if now == written:
            return
        kept = snapshot(state)
        await asyncio.to_thread(write, path, kept)
        written = now

    async def keep() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await save()
            except (OSError, TypeError, ValueError) as error:  # a full disk must not stop it
                _log.warning("sandbox state not written", path=str(path), error=str(error))

    task = asyncio.create_task(keep(), name="keep sandbox state")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await save()


def _webhooks_json(book: WebhookBook) -> dict[str, Any]:
    return {
        "settings": dataclasses.asdict(book.settings) if book.settings else None,
        "subscriptions": [dataclasses.asdict(s) for s in book.subscriptions.values()],
        "members": [dataclasses.asdict(m) for m in book.members.values()],
        "relays": [dataclasses.asdict(r) for r in book.relays.values()],
        "nextSubscriptionId": book.next_subscription_id,
        "nextToolingId": book.next_tooling_id,
    }


def _restore_webhooks(book: WebhookBook, kept: dict[str, Any]) -> None:
    book.clear()
    book.settings = HubSpotSettings(**kept["settings"]) if kept["settings"] else None
    book.subscriptions = {s["id"]: HubSpotSubscription(**s) for s in kept["subscriptions"]}
    book.members = {m["id"]: ChannelMember(**m) for m in kept["members"]}
    book.relays = {r["id"]: EventRelay(**r) for r in kept["relays"]}
    book.next_subscription_id = kept["nextSubscriptionId"]
    book.next_tooling_id = kept["nextToolingId"]


def _all_tokens(state: SandboxState) -> list[Token]:
    tokens = state.tokens
    return [*tokens.by_access.values(), *tokens.by_refresh.values()]


def _token_json(item: Token | AuthorizationCode) -> dict[str, Any]:
    values = dataclasses.asdict(item)
    values["provider"] = item.provider.name
    return values


def _rng_state(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_tuple(kept: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = kept
    return (version, tuple(internal), gauss)
