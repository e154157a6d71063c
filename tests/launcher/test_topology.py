"""`ampmesh topology apply`: the contract's topics, subscriptions and dead letters, made on
a real Pub/Sub emulator (a fresh project per test), idempotently; and the Cloud path's
one-line answer when there are no credentials."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.pubsub_v1.types import Subscription

from services.launcher.infra import PubSub
from services.runtime.pubsub_topology import (
    AdminClients,
    Topology,
    emulator_publisher,
    emulator_subscriber,
    topology,
)
from tests.support.own_infra import own_component


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[str]:
    async with own_component(PubSub, "pubsub") as component:
        yield component.endpoint


@pytest.fixture
def project() -> str:
    # The emulator keeps every project apart: a fresh one is an empty bus.
    return f"topology-{uuid.uuid4().hex[:8]}"


async def _ampmesh(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("AMPMESH_", "PUBSUB_", "GOOGLE_"))
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.launcher",
        *args,
        env={**clean, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _existing(host: str, project: str) -> tuple[set[str], dict[str, Subscription]]:
    with emulator_publisher(host) as publisher:
        topics = {
            t.name.rsplit("/", 1)[1]
            for t in publisher.list_topics(project=f"projects/{project}", timeout=10)
        }
    with emulator_subscriber(host) as subscriber:
        subscriptions = {
            s.name.rsplit("/", 1)[1]: s
            for s in subscriber.list_subscriptions(project=f"projects/{project}", timeout=10)
        }
    return topics, subscriptions


_LINE = re.compile(
    r"(created|exists|differs|updated|would create)\s+(topic|subscription)\s+([^:\s]+)"
)


def _states(out: str) -> dict[str, str]:
    """`kind name` -> its state, from the command's report lines."""
    found = (_LINE.match(line) for line in out.splitlines())
    return {f"{m[2]} {m[3]}": m[1] for m in found if m}


def _everything(layout: Topology) -> set[str]:
    return {f"topic {t}" for t in layout.topics} | {
        f"subscription {s.name}" for s in layout.subscriptions
    }


async def test_apply_creates_the_contracts_topology_and_a_second_apply_creates_nothing(
    emulator: str, project: str
) -> None:
    layout = topology(project)
    code, out, err = await _ampmesh(
        "topology", "apply", "--project", project, "--emulator-host", emulator
    )
    assert code == 0, err
    topics, subscriptions = _existing(emulator, project)
    assert topics == set(layout.topics)
    assert set(subscriptions) == {s.name for s in layout.subscriptions}
    scribe = subscriptions["ampmesh-operations.scribe"]
    assert scribe.dead_letter_policy.dead_letter_topic == layout.topic_path(
        "ampmesh-operations.scribe.dead-letter"
    )
    assert scribe.dead_letter_policy.max_delivery_attempts == 5
    states = _states(out)
    assert {k for k, v in states.items() if v == "created"} == _everything(layout)

    # Through AMPMESH_PUBSUB_EMULATOR_HOST and AMPMESH_PUBSUB_PROJECT this time.
    env = {"AMPMESH_PUBSUB_EMULATOR_HOST": emulator, "AMPMESH_PUBSUB_PROJECT": project}
    code, out, err = await _ampmesh("topology", "apply", env=env)
    assert code == 0, err
    states = _states(out)
    assert {k for k, v in states.items() if v == "exists"} == _everything(layout)
    assert "created 0," in out
    assert _existing(emulator, project)[0] == topics


async def test_a_dry_run_reports_what_it_would_create_and_changes_nothing(
    emulator: str, project: str
) -> None:
    code, out, err = await _ampmesh(
        "topology", "apply", "--dry-run", "--project", project, "--emulator-host", emulator
    )
    assert code == 0, err
    states = _states(out)
    assert {k for k, v in states.items() if v == "would create"} == _everything(topology(project))
    assert _existing(emulator, project) == (set(), {})


async def test_a_subscription_that_differs_is_reported_and_updated_on_request(
    emulator: str, project: str
) -> None:
    layout = topology(project)
    name = "ampmesh-operations.scribe"
    with AdminClients.emulator(emulator) as clients:
        # Made by hand, before the contract's: a short ack deadline, no dead letters.
        clients.publisher.create_topic(name=layout.topic_path("ampmesh-operations"), timeout=10)
        clients.subscriber.create_subscription(
            name=layout.subscription_path(name),
            topic=layout.topic_path("ampmesh-operations"),
            ack_deadline_seconds=10,
            timeout=10,
        )
    args = ("topology", "apply", "--project", project, "--emulator-host", emulator)
    code, out, err = await _ampmesh(*args)
    assert code == 0, err
    [line] = [line for line in out.splitlines() if f"subscription {name}:" in line]
    assert line.startswith("differs")
    assert "ack deadline 10 s, wants 30 s" in line and "no dead-letter policy" in line
    assert "--update" in out
    assert _existing(emulator, project)[1][name].ack_deadline_seconds == 10

    code, out, err = await _ampmesh(*args, "--update")
    assert code == 0, err
    assert _states(out)[f"subscription {name}"] == "updated"
    found = _existing(emulator, project)[1][name]
    assert found.ack_deadline_seconds == 30
    assert found.dead_letter_policy.dead_letter_topic == layout.topic_path(f"{name}.dead-letter")

    code, out, err = await _ampmesh(*args)
    assert code == 0, err
    assert _states(out)[f"subscription {name}"] == "exists"


async def test_cloud_without_credentials_is_one_line_saying_what_to_set(tmp_path: Path) -> None:
    code, out, err = await _ampmesh(
        "topology",
        "apply",
        "--project",
        "my-project",
        env={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json")},
    )
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert "GOOGLE_APPLICATION_CREDENTIALS" in line and "--emulator-host" in line
    assert "Traceback" not in err
