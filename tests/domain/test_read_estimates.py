"""What a read tells the builder it expects to read: HubSpot's search gives `total`, the
records its query matches whatever page is asked for, so every page of a window
estimates the window's size (a backfill of 2,000 records once said 3,800: the offset of
the page was added to it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from services.domain.connectors.base import ReadRequest
from services.domain.connectors.hubspot import HubSpotConnector
from services.sandbox.providers import Provider
from tests.support.served_sandbox import ServedSandbox

UNTIL = datetime(2026, 11, 1, tzinfo=UTC)
START = UNTIL - timedelta(days=10)


async def test_every_page_of_a_hubspot_window_estimates_the_window(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.state.records.seed(Provider.HUBSPOT, "deals", 2_000, 7, START, UNTIL, replace=True)
    since = START - timedelta(days=1)
    expected = [
        r.id
        for r in sandbox.state.records.records(Provider.HUBSPOT, "deals")
        if since <= r.modified < UNTIL + timedelta(seconds=1)
    ]
    connector = HubSpotConnector()
    auth = sandbox.auth(Provider.HUBSPOT)
    token, estimates, read = "", [], 0
    while True:
        page = await connector.read_page(
            http,
            auth,
            ReadRequest(
                "deals", [], since, UNTIL + timedelta(seconds=1), page_token=token, page_size=100
            ),
        )
        estimates.append(page.estimated_total)
        read += len(page.records)
        token = page.next_page_token
        if not token:
            break
    assert read == len(expected) == 2_000
    # Twenty pages of live records, then the archived phase (nothing deleted), which
    # keeps the window's estimate.
    assert len(estimates) == 21
    assert set(estimates) == {2_000}
