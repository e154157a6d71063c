"""A backfill end to end against the raw limit (issue #6's numbers).

Everything runs on the real local mesh with the provider sandbox (a temporary home,
stopped at the end). The sandbox holds --records HubSpot contacts. Two ways to move them
all to the same local webhook receiver (tests/support/webhooks.py: a real HTTP server that
checks every delivery's signature with the svix library and counts record ids):

1. Raw: a plain loop, no platform. It pages through the sandbox's list API (limit 100,
   HubSpot's documented maximum) with a sandbox token, and posts each page's records as
   one signed webhook body, one request at a time. This is what the sandbox, the
   receiver and one client cost on this machine: the ceiling. It runs twice: with
   aiohttp (the cheapest client here: the ceiling the ratio is taken against) and with
   httpx (what the first versions of this benchmark used; a third of the speed, so the
   ratio against it flattered the platform).
2. Platform: a builder's setup through the REST API (destination, manifest, connection),
   then the installation is created; the clock runs from that request until the
   receiver has seen every record id. In between: the api starts BackfillRead, the
   temporal worker pages through the sandbox and publishes each page to Pub/Sub,
   messenger records and signs each delivery and posts it, scribe records the operation.

Rounds alternate the raw loops and platform (each platform round a new object, so each backfill
reads its own records). Printed: records/s of each (median [lowest to highest]), the
ratio platform / raw (target >= 0.5) and the platform's absolute rate (target >= 20,000
records/s), duplicates the receiver saw, and the peak resident memory of each service
during the platform runs (sampled every 100 ms) and of the benchmark process.

    .venv/bin/python -m bench.read_backfill [--records 50000] [--rounds 3]

Takes about a minute with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import resource
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import orjson
import psutil
from ampmesh.sandbox.v1 import sandbox_pb2_grpc

from bench._load import make_home, spread
from services.launcher.mesh import MeshOptions, running_mesh
from services.runtime.channels import mesh_channel
from tests.e2e.reads_world import CONTACT_FIELDS, make_world, provider_ids, sandbox_token, seed
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, serve

SERVICES = ("api", "temporal-worker", "messenger", "scribe")
PATIENCE = 600.0


def sign(secret: str, message_id: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers, as any sender must produce them."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    stamp = str(int(time.time()))
    digest = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(digest).decode()
    return {
        "content-type": "application/json",
        "svix-id": message_id,
        "svix-timestamp": stamp,
        "svix-signature": signature,
    }


Fetch = Callable[[str, dict[str, str]], Awaitable[bytes]]
Post = Callable[[bytes, dict[str, str]], Awaitable[None]]


async def _plain_loop(object_name: str, secret: str, fetch: Fetch, post: Post) -> float:
    """Seconds to page through the sandbox (limit 100, HubSpot's maximum) and post each
    page's records as one signed body, one request at a time."""
    started = time.perf_counter()
    after = ""
    while True:
        params = {"limit": "100", **({"after": after} if after else {})}
        data = orjson.loads(await fetch(f"/hubspot/crm/v3/objects/{object_name}", params))
        body = orjson.dumps({"result": [{"id": r["id"], "raw": r} for r in data["results"]]})
        await post(body, sign(secret, f"msg_{uuid.uuid4().hex}", body))
        after = data.get("paging", {}).get("next", {}).get("after", "")
        if not after:
            return time.perf_counter() - started


async def raw_loop(
    stack: Stack, object_name: str, receiver: Receiver, secret: str, client: str
) -> float:
    """Seconds for a plain loop to move every record from the sandbox to the receiver,
    with aiohttp (the cheapest client here, as messenger sends: the ceiling) or httpx
    (the client of the connectors, and of this benchmark's first versions)."""
    token = (await sandbox_token(stack))["access_token"]
    provider_headers = {"authorization": f"Bearer {token}"}
    base = stack.endpoints["sandbox-http"]
    if client == "aiohttp":
        async with aiohttp.ClientSession() as http:

            async def fetch(path: str, params: dict[str, str]) -> bytes:
                async with http.get(base + path, params=params, headers=provider_headers) as got:
                    got.raise_for_status()
                    return await got.read()

            async def post(body: bytes, headers: dict[str, str]) -> None:
                async with http.post(receiver.url(), data=body, headers=headers) as sent:
                    sent.raise_for_status()

            return await _plain_loop(object_name, secret, fetch, post)
    async with httpx.AsyncClient() as client_:

        async def fetch_x(path: str, params: dict[str, str]) -> bytes:
            got = await client_.get(base + path, params=params, headers=provider_headers)
            got.raise_for_status()
            return got.content

        async def post_x(body: bytes, headers: dict[str, str]) -> None:
            sent = await client_.post(receiver.url(), content=body, headers=headers)
            sent.raise_for_status()

        return await _plain_loop(object_name, secret, fetch_x, post_x)


class Processes:
    """While a platform run goes on: the peak resident memory of the mesh's services, and
    the CPU seconds every process of the mesh spends (where the run's time goes)."""

    def __init__(self, stack: Stack) -> None:
        self.pids = {s.name: s.process.pid for s in stack.mesh.services}
        self.pids.update({c.name: c.pid for c in stack.mesh.components if c.pid is not None})
        self.pids["bench (receiver)"] = os.getpid()
        self.peaks: dict[str, int] = dict.fromkeys(SERVICES, 0)
        self.cpu: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._started: dict[str, float] = {}

    def _cpu_now(self) -> dict[str, float]:
        spent: dict[str, float] = {}
        for name, pid in self.pids.items():
            try:
                process = psutil.Process(pid)
                # A process and its children (PostgreSQL's backends), except this one:
                # the whole mesh is its children.
                family = [process]
                if pid != os.getpid():
                    family += process.children(recursive=True)
                spent[name] = sum(p.cpu_times().user + p.cpu_times().system for p in family)
            except psutil.NoSuchProcess:
                continue
        return spent

    async def _sample(self) -> None:
        while True:
            for name in SERVICES:
                try:
                    rss = psutil.Process(self.pids[name]).memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peaks[name] = max(self.peaks[name], rss)
            await asyncio.sleep(0.1)

    def __enter__(self) -> Processes:
        self._started = self._cpu_now()
        self._task = asyncio.create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        for name, seconds in self._cpu_now().items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds - self._started.get(name, 0.0)


async def run(records: int, rounds: int) -> int:
    home = make_home()
    try:
        async with running_mesh(home, MeshOptions(sandbox=True)) as mesh:
            stack = Stack(mesh, mesh.endpoints())
            channel = mesh_channel(
                stack.endpoints["sandbox"], stack.credentials("tests"), server_identity="sandbox"
            )
            async with channel, serve(Receiver(keep_requests=False)) as receiver:
                sandbox = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
                raw_rates: list[float] = []
                httpx_rates: list[float] = []
                platform_rates: list[float] = []
                duplicates: list[int] = []
                first_record: list[float] = []
                processes = Processes(stack)
                for index in range(rounds):
                    object_name = f"contacts_{index}_{uuid.uuid4().hex[:6]}"
                    world = await make_world(
                        stack, receiver.url(), object_name, fields=CONTACT_FIELDS
                    )
                    await seed(sandbox, object_name, records)
                    ids = await provider_ids(stack, object_name)
                    receiver.secrets[HOOK] = world.signing_key
                    for client, rates in (("aiohttp", raw_rates), ("httpx", httpx_rates)):
                        receiver.received = type(receiver.received)()
                        seconds = await raw_loop(
                            stack, object_name, receiver, world.signing_key, client
                        )
                        if set(receiver.received.records) != ids:
                            print(f"INVALID: the {client} loop did not deliver every record")
                            return 1
                        rates.append(records / seconds)
                    receiver.received = type(receiver.received)()
                    with processes:
                        started = time.perf_counter()
                        started_at = time.monotonic()
                        await world.install(f"group-{index}")
                        missing = await receiver.wait_for_records(ids, PATIENCE)
                        seconds = time.perf_counter() - started
                    if missing or receiver.received.bad_signatures:
                        print(
                            f"INVALID: {len(missing)} records never arrived, "
                            f"{receiver.received.bad_signatures} bad signatures"
                        )
                        return 1
                    platform_rates.append(records / seconds)
                    first_record.append(receiver.received.first_at - started_at)
                    duplicates.append(receiver.received.duplicate_records)
                    print(
                        f"round {index + 1}: raw {raw_rates[-1]:,.0f} records/s "
                        f"(httpx {httpx_rates[-1]:,.0f}), "
                        f"platform {platform_rates[-1]:,.0f} records/s "
                        f"({seconds:.1f} s, {duplicates[-1]} duplicates)",
                        flush=True,
                    )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    ratio = [p / r for p, r in zip(platform_rates, raw_rates, strict=True)]
    httpx_ratio = [p / r for p, r in zip(platform_rates, httpx_rates, strict=True)]
    print(f"\n{records:,} records, {rounds} rounds, {os.cpu_count()} cores")
    print(f"raw loop   {spread(raw_rates, ',.0f')} records/s (aiohttp: the ceiling)")
    print(f"httpx loop {spread(httpx_rates, ',.0f')} records/s")
    print(f"platform   {spread(platform_rates, ',.0f')} records/s   (target >= 20,000)")
    print(f"ratio      {spread(ratio, '.2f')}   (platform / raw loop; target >= 0.5)")
    print(f"           {spread(httpx_ratio, '.2f')}   (platform / httpx loop)")
    print(f"duplicates {statistics.median(duplicates):.0f} per backfill (median)")
    print(f"first record after {spread(first_record, '.2f')} s (installation created to receipt)")
    for name, peak in processes.peaks.items():
        print(f"peak RSS   {name:<16} {peak / 2**20:,.0f} MiB")
    total = sum(processes.cpu.values())
    print(f"CPU during the {rounds} platform runs: {total:.1f} s")
    for name, spent in sorted(processes.cpu.items(), key=lambda item: -item[1]):
        if spent >= 0.05:
            print(f"  {name:<18} {spent:6.2f} s  {spent / total:4.0%}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS   {'bench (receiver)':<16} {own:,.0f} MiB")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    code = asyncio.run(run(args.records, args.rounds))
    sys.stdout.flush()
    os._exit(code)  # temporalio can crash at interpreter exit (sdk-python #300)


if __name__ == "__main__":
    main()
