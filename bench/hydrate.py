"""How long an install UI waits for its configure screen: a hydrated revision, cold and
warm, against a call of the same edge and api that touches only the database.

The embeddable UI (`@amp-labs/react`) asks for `GET …/revisions/{rev}:hydrate?connectionId=`
once a customer has connected, and renders nothing until it answers. A cold answer asks the
provider (here the sandbox, on loopback) for each read object's fields through the
connection: a token from the token-manager, then one describe per object, all at once. A
warm answer comes from the api's field-metadata cache. The baseline is `GET
…/integrations/{id}`: the same edge, authentication and database lookups, no provider.

Three HubSpot objects (contacts, companies, deals) are read by the revision. Cold calls
each hydrate a connection never hydrated before (made beforehand, so only the hydrate is
timed); warm calls hydrate one connection again and again. Calls are sequential (one
person, one screen), rounds interleave the three kinds so the noise of a shared machine
hits all, and each figure is the median over rounds with [lowest to highest] beside it.

    .venv/bin/python -m bench.hydrate [--calls 40] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable

import httpx

from bench._load import make_home, spread
from services.launcher.edge import EdgeError
from services.launcher.infra.base import InfraError
from services.launcher.mesh import MeshError, MeshOptions, running_mesh
from tests.support.control_plane import (
    admin_client,
    create_project,
    create_provider_app,
    insert_webhook_destinations,
)
from tests.support.sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, TOKEN_PATHS, USERNAME
from tests.support.stack import Stack

OBJECTS = ("contacts", "companies", "deals")
MANIFEST = textwrap.dedent(
    """\
    specVersion: 1.0.0
    integrations:
      - name: crm
        provider: hubspot
        read:
          objects:
    """
) + "".join(
    f"        - objectName: {name}\n          destination: hook\n"
    f"          requiredFields:\n            - fieldName: hs_object_id\n"
    for name in OBJECTS
)


async def _connection(http: httpx.AsyncClient, sandbox_url: str, group: str) -> str:
    async with httpx.AsyncClient(base_url=sandbox_url) as sandbox:
        tokens = (
            await sandbox.post(
                TOKEN_PATHS["hubspot"],
                data={"grant_type": "password", "username": USERNAME, "password": PASSWORD},
                auth=(CLIENT_ID, CLIENT_SECRET),
            )
        ).json()
    made = await http.post(
        "/connections:generate",
        json={
            "provider": "hubspot",
            "groupRef": group,
            "consumerRef": f"{group}-user",
            "oauth2AuthorizationCode": {
                "accessToken": {"token": tokens["access_token"]},
                "refreshToken": {"token": tokens["refresh_token"]},
            },
        },
    )
    made.raise_for_status()
    return str(made.json()["id"])


async def _timed(call: Callable[[], Awaitable[httpx.Response]]) -> float:
    started = time.perf_counter()
    answer = await call()
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.request.url} answered {answer.status_code}: {answer.text}")
    return elapsed * 1000


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def _bench(args: argparse.Namespace) -> None:
    home = make_home()
    try:
        async with running_mesh(home, MeshOptions(sandbox=True)) as mesh:
            stack = Stack(mesh, mesh.endpoints())
            async with admin_client(stack) as admin:
                project = await create_project(admin, "hydrate-bench", "Hydrate bench")
                await create_provider_app(admin, project["id"], "hubspot")
            await insert_webhook_destinations(stack, project["id"], "hook")
            async with admin_client(stack, f"/v1/projects/{project['id']}") as http:
                deployed = await http.put("/integrations:batch", json={"sourceYaml": MANIFEST})
                deployed.raise_for_status()
                integration = deployed.json()[0]
                base = f"/integrations/{integration['id']}"
                hydrate = f"{base}/revisions/{integration['latestRevision']['id']}:hydrate"
                cold_ids = [
                    await _connection(http, stack.endpoints["sandbox-http"], f"cold-{i}")
                    for i in range(args.calls * args.rounds)
                ]
                warm_id = await _connection(http, stack.endpoints["sandbox-http"], "warm")
                await http.get(hydrate, params={"connectionId": warm_id})  # fills the cache
                await http.get(base)
                kinds: dict[str, Callable[[int], Callable[[], Awaitable[httpx.Response]]]] = {
                    "get integration (baseline)": lambda _: lambda: http.get(base),
                    "hydrate, warm (cached)": lambda _: (
                        lambda: http.get(hydrate, params={"connectionId": warm_id})
                    ),
                    "hydrate, cold (3 describes)": lambda i: (
                        lambda: http.get(hydrate, params={"connectionId": cold_ids[i]})
                    ),
                }
                p50: dict[str, list[float]] = {k: [] for k in kinds}
                p99: dict[str, list[float]] = {k: [] for k in kinds}
                for round_ in range(args.rounds):
                    order = list(kinds) if round_ % 2 == 0 else list(reversed(kinds))
                    for kind in order:
                        times = [
                            await _timed(kinds[kind](round_ * args.calls + n))
                            for n in range(args.calls)
                        ]
                        p50[kind].append(statistics.median(times))
                        p99[kind].append(_p99(times))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(
        f"hydrate: {len(OBJECTS)} HubSpot objects per revision, {args.calls} sequential calls "
        f"per kind per round, {args.rounds} rounds; ms, median over rounds [lowest to highest]"
    )
    for kind in p50:
        print(f"  {kind:<30} p50 {spread(p50[kind], '.1f')}   p99 {spread(p99[kind], '.1f')}")
    baseline = p50["get integration (baseline)"]
    for kind in ("hydrate, warm (cached)", "hydrate, cold (3 describes)"):
        ratios = [h / b for h, b in zip(p50[kind], baseline, strict=True)]
        print(f"  {kind} / baseline, p50: {spread(ratios, '.2f')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="calls per kind per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds")
    args = parser.parse_args()
    if args.calls < 2 or args.rounds < 1:
        parser.error("--calls must be at least 2 and --rounds at least 1")
    try:
        asyncio.run(_bench(args))
    except (MeshError, EdgeError, InfraError) as failed:
        print(f"hydrate bench: {str(failed).splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
