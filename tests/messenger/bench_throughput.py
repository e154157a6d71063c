"""Messenger's throughput (not part of the suite; run it explicitly):

    .venv/bin/pytest tests/messenger/bench_throughput.py -q -s

300 read-result pages of ~150 KB (170 records each, 51,000 records) go through the
consumer handler (200 in flight, as Pub/Sub's flow control allows), PostgreSQL and signed
POSTs to a local receiver in the same process (so the figure includes the receiver's
work). Prints deliveries/s, records/s and the CPU seconds spent."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from tests.messenger.conftest import Project, Running
from tests.messenger.helpers import page_envelope, until
from tests.messenger.receiver import Receiver

pytestmark = pytest.mark.e2e

PAGES, RECORDS = 300, 170


async def test_throughput(running: Running, project: Project, receiver: Receiver) -> None:
    receiver.count_only = True
    destination, _ = await project.destination(receiver.url("/bench"))
    envelopes = []
    for page in range(1, PAGES + 1):
        envelope = page_envelope(project.id, destination, page=page, records=RECORDS)
        record = {"id": "x" * 20, "email": "someone@example.com", "name": "n" * 600, "n": 1}
        envelope.read_result_page.body = orjson.dumps({"result": [record] * RECORDS})
        envelopes.append(envelope)
    size = sum(len(e.read_result_page.body) for e in envelopes) / PAGES
    slots = asyncio.Semaphore(200)

    async def handle(envelope: object) -> None:
        async with slots:
            await running.consumers.read_result(envelope, {}, 1)  # type: ignore[arg-type]

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(handle(e) for e in envelopes))
    await until(
        project.pool,
        "SELECT count(*) = $2 FROM webhook_deliveries "
        "WHERE destination_id = $1::uuid AND status = 'succeeded'",
        destination,
        PAGES,
        patience=120,
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"\n{PAGES} deliveries of {size / 1000:.0f} KB ({PAGES * RECORDS} records) in "
        f"{wall:.2f} s: {PAGES / wall:.0f} deliveries/s, {PAGES * RECORDS / wall:.0f} "
        f"records/s; {cpu:.2f} CPU s in this process (messenger + receiver)"
    )
    assert len(receiver.received) == PAGES
