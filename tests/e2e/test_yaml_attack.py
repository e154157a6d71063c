"""Hostile amp.yaml through the edge: control characters, deep nesting, alias bombs and
oversized manifests are refused with a 400 naming sourceYaml and change nothing, and while
a client sends the worst manifests it can in a loop, the api still answers other requests
quickly (manifests are read in worker processes, never on the api's event loop)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from services.domain.manifest import MANIFEST_LIMITS
from tests.support.control_plane import admin_client, problem
from tests.support.integrations import MANIFEST, Project, new_project
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

LIMITS = MANIFEST_LIMITS


def _values_bomb(k: int = 30) -> str:
    """k integrations of k objects of k fields, each written once (k**3 field entries)."""
    field = "&f {fieldName: a}" + ", *f" * (k - 1)
    obj = f"&o {{objectName: x, destination: d, requiredFields: [{field}]}}" + ", *o" * (k - 1)
    integration = f"&i {{name: a, provider: hubspot, read: {{objects: [{obj}]}}}}"
    return f"specVersion: 1.0.0\nintegrations: [{integration}" + ", *i" * (k - 1) + "]\n"


def _laughs() -> str:
    """The classic: ten of ten of ... of a long string, a few hundred bytes written."""
    lines = [f"l0: &l0 {'x' * 100}"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 9)]
    return "\n".join(lines) + "\n"


def _widest() -> str:
    """As many flow mappings as the size limit holds: the most values ruamel reads before
    the values limit stops it (seconds of CPU)."""
    return "a: [" + "{a: b}, " * ((LIMITS.chars - 10) // 8) + "]\n"


def _largest_valid() -> str:
    """A well-formed manifest near the size limit, whose every object names a destination
    the project lacks: read, typed and validated in full, then refused."""
    entry = (
        "  - name: i{n}\n    provider: hubspot\n    read:\n      objects:\n"
        "        - objectName: o\n          destination: nowhere\n"
        "          schedule: '*/10 * * * *'\n"
        "          requiredFields: [{{fieldName: a}}, {{fieldName: b}}, {{fieldName: c}}]\n"
    )
    text, n = "specVersion: 1.0.0\nintegrations:\n", 0
    while len(text) + len(entry) + 10 < LIMITS.chars:
        text += entry.format(n=n)
        n += 1
    return text


# What is refused, and the words of the one issue each gets (named sourceYaml).
HOSTILE: dict[str, tuple[str, str]] = {
    "control character": ("a: \x16", "(line 1, column 4)"),
    "control character in a manifest": (
        MANIFEST.replace("displayName: CRM sync", "displayName: CRM\x16sync"),
        "character U+0016 is not allowed in YAML (line 4, column 21)",
    ),
    "1,000 levels of [": ("[" * 1000 + "]" * 1000, f"more than {LIMITS.depth} levels deep"),
    "unclosed flow mappings": ("{a: " * 5000, f"more than {LIMITS.depth} levels deep"),
    "300 levels of block sequences": ("- " * 300 + "x\n", f"more than {LIMITS.depth} levels"),
    "alias bomb of values": (_values_bomb(), f"more than {LIMITS.values} values"),
    "alias bomb of characters": (_laughs(), f"more than {LIMITS.value_chars} characters"),
    "recursive alias": ("specVersion: 1.0.0\nintegrations: &a [*a]\n", "inside the node"),
    "over the size limit": ("#" * (LIMITS.chars + 1), f"the limit is {LIMITS.chars}"),
    "month 13": ("specVersion: 2020-13-45\n", "not a valid timestamp"),
}


@pytest.fixture(scope="module")
async def admin_http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(stack) as http:
        http.timeout = httpx.Timeout(60)
        yield http


@pytest.fixture(scope="module")
async def deployed(stack: Stack, admin_http: httpx.AsyncClient) -> tuple[Project, str]:
    """A project with MANIFEST deployed, and the id of its crm-sync integration."""
    project = await new_project(stack, admin_http)
    deployed = await project.deploy(MANIFEST)
    assert deployed.status_code == 200, deployed.text
    return project, deployed.json()[0]["id"]


@pytest.mark.parametrize("route", ["batch", "revision"])
@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_yaml_is_a_400_naming_source_yaml_and_changes_nothing(
    deployed: tuple[Project, str], route: str, name: str
) -> None:
    project, crm = deployed
    source, words = HOSTILE[name]
    before = await project.state()
    if route == "batch":
        refused = await project.deploy(source)
    else:
        refused = await project.http.post(
            f"{project.base}/{crm}/revisions", json={"sourceYaml": source}
        )
    body = problem(refused, 400)
    assert [(i["in"], i["name"]) for i in body["issues"]] == [("body", "sourceYaml")]
    assert words in body["issues"][0]["detail"]
    assert "Traceback" not in refused.text and "Error" not in body["detail"]
    assert await project.state() == before


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def _time_gets(http: httpx.AsyncClient, path: str, count: int) -> list[float]:
    """Seconds each of count GETs took, one after another, 10 ms apart."""
    took = []
    for _ in range(count):
        started = time.perf_counter()
        response = await http.get(path)
        took.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.01)
    return took


async def test_the_api_answers_a_get_within_50_ms_p99_while_a_client_sends_the_worst_yaml(
    stack: Stack, deployed: tuple[Project, str]
) -> None:
    project, _ = deployed
    path = f"/v1/projects/{project.name}"
    worst = [
        "[" * 1000 + "]" * 1000,
        "{a: " * 100_000,
        _laughs(),
        _values_bomb(),
        _widest(),
        _largest_valid(),
    ]
    attacks: list[int] = []

    async def attack(http: httpx.AsyncClient) -> None:
        while True:
            for source in worst:
                answered = await http.put(f"{project.base}:batch", json={"sourceYaml": source})
                attacks.append(answered.status_code)

    async with admin_client(stack) as prober:
        await _time_gets(prober, path, 20)  # connections and caches warm
        quiet = await _time_gets(prober, path, 200)
        async with admin_client(stack) as one, admin_client(stack) as two:
            one.timeout = two.timeout = httpx.Timeout(120)
            attackers = [asyncio.create_task(attack(one)), asyncio.create_task(attack(two))]
            try:
                await asyncio.sleep(1)  # both attackers' first manifests are being read
                loud = await _time_gets(prober, path, 400)
            finally:
                for attacker in attackers:
                    attacker.cancel()
                await asyncio.gather(*attackers, return_exceptions=True)
    print(
        f"\nGET {path}: quiet p50 {statistics.median(quiet) * 1000:.1f} ms "
        f"p99 {_percentile(quiet, 0.99) * 1000:.1f} ms; under attack ({len(attacks)} "
        f"manifests answered) p50 {statistics.median(loud) * 1000:.1f} ms "
        f"p99 {_percentile(loud, 0.99) * 1000:.1f} ms"
    )
    assert attacks  # (the attackers loop through the whole measurement)
    assert set(attacks) == {400}
    assert _percentile(loud, 0.99) < 0.050
