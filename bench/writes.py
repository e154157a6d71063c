"""What the Write API adds to writing records, against posting the same writes to the
provider directly.

On the real local mesh (brought up with the sandbox in a temporary home, stopped at the
end), a builder's setup (tests/e2e/writes_world.py: a HubSpot integration writing
`companies`, a connection holding sandbox tokens, an installation) and two measures, each
made both ways in alternating order, --rounds times:

  batched     --records records (default 20,000) as batches of 100, --concurrency
              requests in flight: direct is POST <sandbox>/hubspot/crm/v3/objects/
              companies/batch/create with the connection's token (what a builder's own
              loop would send); via ampmesh is POST <write host>/v1/projects/P/
              integrations/crm-writes/objects/companies {type: create, batch: [...]}
              with the builder's key (the api checks the batch against the installation
              and the object's fields, calls the same endpoint, records the operation).
              Figure: records/s, ampmesh / direct.
  single      --singles synchronous single-record creates, one in flight: direct POST
              <sandbox>/hubspot/crm/v3/objects/companies, via ampmesh the write host with
              `record`. Figure: p50 and p99 latency, ampmesh minus direct.

Targets (issue 16): batched >= 0.7 of direct's records/s; single adds <= 5 ms at p50.
Every way's answers are checked (every record written, 200s only) and the sandbox's own
count of records written must grow by exactly what was sent. Nothing is pinned: the
sandbox, Envoy, the api and the client share the two cores, as on a builder's laptop.

    .venv/bin/python -m bench.writes [--records 20000] [--singles 300] [--rounds 3]
        [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from ampmesh.sandbox.v1 import sandbox_pb2

from bench._rounds import BenchError, fresh_mesh, print_summary, run
from services.launcher.mesh import MeshOptions
from tests.e2e.writes_world import WritesWorld, writes_world
from tests.support.sandbox import controlling
from tests.support.stack import Stack

OBJECT = "companies"
BATCH = 100
TARGET_RATIO = 0.7
TARGET_ADDED_P50_MS = 5.0
# No webhook is called: the destination only has to exist.
NOWHERE = "http://127.0.0.1:9/hook"

Send = Callable[[httpx.AsyncClient, list[dict[str, Any]]], Awaitable[int]]


def _records(count: int, tag: str) -> list[dict[str, Any]]:
    return [{"name": f"{tag} {n}", "city": "Lisbon"} for n in range(count)]


async def _direct_batch(http: httpx.AsyncClient, records: list[dict[str, Any]]) -> int:
    answer = await http.post(
        f"/hubspot/crm/v3/objects/{OBJECT}/batch/create",
        json={
            "inputs": [
                {"properties": record, "objectWriteTraceId": str(n)}
                for n, record in enumerate(records)
            ]
        },
    )
    if answer.status_code != 201:
        raise BenchError(f"direct batch answered {answer.status_code}: {answer.text[:200]}")
    return len(answer.json()["results"])


async def _direct_single(http: httpx.AsyncClient, record: dict[str, Any]) -> None:
    answer = await http.post(f"/hubspot/crm/v3/objects/{OBJECT}", json={"properties": record})
    if answer.status_code != 201:
        raise BenchError(f"direct create answered {answer.status_code}: {answer.text[:200]}")


class Bench:
    def __init__(self, world: WritesWorld, stack: Stack, concurrency: int) -> None:
        self.concurrency = concurrency
        self.clients = {
            "direct": httpx.AsyncClient(
                base_url=stack.endpoints["sandbox-http"],
                headers={"Authorization": f"Bearer {world.access_token}"},
                timeout=60,
            ),
            "ampmesh": httpx.AsyncClient(headers={"x-api-key": stack.admin_api_key}, timeout=60),
        }
        # The write host's URL of the object (httpx would add a slash to a base URL's path).
        self.url = str(world.write_http.base_url).rstrip("/") + world.path(OBJECT)
        self.group = world.group

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def batched(self, way: str, records: int) -> float:
        """records/s writing `records` records in batches, `concurrency` in flight."""
        send: Send = _direct_batch if way == "direct" else self._platform_batch
        tag = uuid.uuid4().hex[:8]
        batches = [_records(BATCH, f"{tag}-{n}") for n in range(records // BATCH)]
        queue = list(reversed(batches))
        written = 0
        http = self.clients[way]

        async def worker() -> None:
            nonlocal written
            while queue:
                # Not `written += await ...`: that reads `written` before awaiting.
                done = await send(http, queue.pop())
                written += done

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        took = time.perf_counter() - started
        if written != len(batches) * BATCH:
            raise BenchError(f"{way}: {written} of {len(batches) * BATCH} records written")
        return written / took

    async def _platform_batch(self, http: httpx.AsyncClient, records: list[dict[str, Any]]) -> int:
        answer = await http.post(
            self.url,
            json={
                "groupRef": self.group,
                "type": "create",
                "batch": [{"record": r} for r in records],
            },
        )
        if answer.status_code != 200 or answer.json().get("successCount") != len(records):
            raise BenchError(f"ampmesh batch answered {answer.status_code}: {answer.text[:200]}")
        return len(records)

    async def singles(self, way: str, count: int) -> list[float]:
        """Latencies (ms) of `count` single creates, one in flight."""
        http, tag, took = self.clients[way], uuid.uuid4().hex[:8], []
        for n in range(count):
            record = {"name": f"{tag} {n}"}
            started = time.perf_counter()
            if way == "direct":
                await _direct_single(http, record)
            else:
                answer = await http.post(
                    self.url, json={"groupRef": self.group, "type": "create", "record": record}
                )
                if answer.status_code != 200:
                    raise BenchError(
                        f"ampmesh create answered {answer.status_code}: {answer.text[:200]}"
                    )
            took.append((time.perf_counter() - started) * 1000)
        return took


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _bench(args: argparse.Namespace) -> None:
    started = time.monotonic()
    async with fresh_mesh(MeshOptions(sandbox=True)) as mesh:
        stack = Stack(mesh, mesh.endpoints())
        world = await writes_world(stack, NOWHERE)
        bench = Bench(world, stack, args.concurrency)
        print(
            f"writes: HubSpot {OBJECT} (the sandbox), {args.rounds} rounds, "
            f"{args.records} records in batches of {BATCH} ({args.concurrency} in flight), "
            f"{args.singles} single creates one at a time (mesh up in {mesh.started_in:.1f}s)"
        )
        rates: dict[str, list[float]] = {"direct": [], "ampmesh": []}
        p50: dict[str, list[float]] = {"direct": [], "ampmesh": []}
        p99: dict[str, list[float]] = {"direct": [], "ampmesh": []}
        async with controlling(stack) as control:
            # Warm both paths (connections, the api's metadata cache, the token).
            for way in ("direct", "ampmesh"):
                await bench.batched(way, BATCH * args.concurrency)
                await bench.singles(way, 10)
            before = (await control.GetCounters(sandbox_pb2.GetCountersRequest())).records_written
            sent = 0
            for round_number in range(args.rounds):
                order = ("direct", "ampmesh") if round_number % 2 == 0 else ("ampmesh", "direct")
                for way in order:
                    rates[way].append(await bench.batched(way, args.records))
                    sent += args.records
                for way in reversed(order):
                    latencies = await bench.singles(way, args.singles)
                    sent += args.singles
                    p50[way].append(_quantile(latencies, 0.5))
                    p99[way].append(_quantile(latencies, 0.99))
                print(
                    f"  round {round_number + 1}: records/s direct {rates['direct'][-1]:.0f}, "
                    f"ampmesh {rates['ampmesh'][-1]:.0f}; single p50 direct "
                    f"{p50['direct'][-1]:.2f} ms, ampmesh {p50['ampmesh'][-1]:.2f} ms"
                )
            after = (await control.GetCounters(sandbox_pb2.GetCountersRequest())).records_written
        await bench.close()
        if after - before != sent:
            raise BenchError(f"the sandbox wrote {after - before} records, {sent} were sent")
    ratio = statistics.median(a / d for a, d in zip(rates["ampmesh"], rates["direct"], strict=True))
    added50 = statistics.median(a - d for a, d in zip(p50["ampmesh"], p50["direct"], strict=True))
    added99 = statistics.median(a - d for a, d in zip(p99["ampmesh"], p99["direct"], strict=True))
    print(
        f"batched: ampmesh/direct records/s {ratio:.2f} (target >= {TARGET_RATIO}) "
        f"{'PASS' if ratio >= TARGET_RATIO else 'MISS'}; "
        f"direct {statistics.median(rates['direct']):.0f}/s, "
        f"ampmesh {statistics.median(rates['ampmesh']):.0f}/s"
    )
    print(
        f"single: added p50 {added50:+.2f} ms (target <= {TARGET_ADDED_P50_MS:g}) "
        f"{'PASS' if added50 <= TARGET_ADDED_P50_MS else 'MISS'}, added p99 {added99:+.2f} ms; "
        f"direct p50 {statistics.median(p50['direct']):.2f} ms"
    )
    print_summary(
        started,
        {
            "ratio": round(ratio, 3),
            "added_p50_ms": round(added50, 2),
            "added_p99_ms": round(added99, 2),
            "rates": rates,
            "p50": p50,
            "p99": p99,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    if args.records < BATCH * args.concurrency or args.rounds < 1 or args.singles < 10:
        parser.error("records must fill a batch per worker; rounds >= 1; singles >= 10")
    run("writes", _bench(args))


if __name__ == "__main__":
    main()
