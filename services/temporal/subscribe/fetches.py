"""Record fetches of concurrently handled batches, merged: the consumer handles the
messages of one pull side by side, and a provider that sends one event per request
(a Salesforce relay; HubSpot under light load) would otherwise cost one fetch per event.
Requests for the same connection, object and fields made in the same turn of the event
loop become one fetch (HubSpot: one batch read per 100 ids), whose answer every
requester shares; an error reaches every requester, each of which decides for its own
batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from services.domain.connectors.base import ProviderAuth
from services.domain.connectors.record_fetch import Fetched, fetch_records

# (connection, provider, object, fields, the auth object: a refreshed auth is a new one).
_Key = tuple[str, str, str, tuple[str, ...], int]


@dataclass
class _Pending:
    auth: ProviderAuth
    ids: dict[str, None] = field(default_factory=dict)
    done: asyncio.Future[Fetched] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class FetchCoalescer:
    def __init__(self, http: aiohttp.ClientSession, max_wait: float) -> None:
        self._http = http
        self.max_wait = max_wait
        self._pending: dict[_Key, _Pending] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def fetch(
        self,
        connection_id: str,
        auth: ProviderAuth,
        provider: str,
        object_name: str,
        ids: Sequence[str],
        fields: Sequence[str],
    ) -> Fetched:
        """The records among ids (missing: those the provider no longer has)."""
        key: _Key = (connection_id, provider, object_name, tuple(fields), id(auth))
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(auth)
            asyncio.get_running_loop().call_soon(self._start, key)
        pending.ids.update(dict.fromkeys(ids))
        fetched = await asyncio.shield(pending.done)
        return Fetched(
            records={i: fetched.records[i] for i in ids if i in fetched.records},
            missing={i for i in ids if i in fetched.missing},
        )

    def _start(self, key: _Key) -> None:
        pending = self._pending.pop(key)
        _, provider, object_name, fields, _ = key

        async def run() -> None:
            try:
                fetched = await fetch_records(
                    self._http,
                    pending.auth,
                    provider,
                    object_name,
                    list(pending.ids),
                    fields,
                    max_wait=self.max_wait,
                )
            except Exception as error:
                pending.done.set_exception(error)
            else:
                pending.done.set_result(fetched)

        task = asyncio.ensure_future(run())
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        # Every requester cancelled meanwhile would leave the exception unobserved.
        pending.done.add_done_callback(lambda f: f.cancelled() or f.exception())
