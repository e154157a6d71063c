"""Requests generated from the reference's OpenAPI documents never break a promise of the
edge: no 5xx but the 501 of an operation not built yet, no answer to a caller without a
key, nothing of project B's to project A's key, every error problem+json (harness.py).

Bounded for CI (about three minutes); `make fuzz` runs 50,000 cases. Environment:
AMPMESH_FUZZ_SECONDS (0: no time bound), AMPMESH_FUZZ_CASES, AMPMESH_FUZZ_SEED (the run's
seed is printed), AMPMESH_FUZZ_OPERATIONS (only operations whose label contains it, e.g.
"integrations:batch"). The full report, a curl line per failing operation, is written
beside the test's temporary files and its path printed.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys

import pytest

from tests.fuzz.harness import Budget, Fuzzer, Tally, targets, write_report
from tests.fuzz.world import World
from tests.support.stack import Stack

# What CI spends on fuzzing, spread over every operation (2 cores, ~45 cases a second).
CI_SECONDS = 180.0
BUDGET = Budget.from_env(CI_SECONDS)
# pytest-timeout's limit: the budget, plus seeding and the last operation's overrun; a
# run bounded only by cases has no time limit.
TIMEOUT = 0 if BUDGET.seconds is None else int(BUDGET.seconds * 1.25) + 120

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]


@pytest.mark.timeout(TIMEOUT)
async def test_generated_requests_break_no_promise(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    def progress(line: str) -> None:
        # Past pytest's capture: a long run says how far it got.
        print(line, file=sys.__stderr__, flush=True)

    def run() -> Tally:
        world = World(stack.endpoints["api"], stack.admin_api_key, stack.org_id)
        return Fuzzer(world, stack.endpoints, BUDGET, progress).run()

    tally = await asyncio.to_thread(run)
    report = tmp_path_factory.mktemp("fuzz") / "report.txt"
    write_report(tally, report)
    settings = " ".join(
        f"{name}={shlex.quote(os.environ[name])}"
        for name in ("AMPMESH_FUZZ_SECONDS", "AMPMESH_FUZZ_CASES", "AMPMESH_FUZZ_OPERATIONS")
        if name in os.environ
    )
    rerun = f"rerun: AMPMESH_FUZZ_SEED={BUDGET.seed} {settings} .venv/bin/pytest -q tests/fuzz"
    summary = f"{tally.summary()}\n  seed {BUDGET.seed}; full report: {report}\n  {rerun}"
    with capsys.disabled():
        print(f"\n{summary}")

    unvisited = [t.label for t in targets(stack.endpoints, BUDGET.only)]
    unvisited = [label for label in unvisited if label not in tally.by_operation]
    assert not tally.failures, summary
    assert not unvisited, f"operations that got no case: {unvisited}\n{summary}"
