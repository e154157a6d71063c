"""What a service's log lines may hold: a traceback names frames, never their variables."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SECRET = "rt-5ecret-value-never-logged"

# A process that logs an unexpected error raised where a secret is a local variable, as
# the runtime's interceptor does for an unhandled exception.
SCRIPT = f"""
from services.runtime.logs import configure_logging, get_logger
configure_logging(fmt={{fmt!r}})
def revoke(token):
    raise TypeError("the provider's client said no")
try:
    revoke({SECRET!r})
except TypeError:
    get_logger("test").exception("unhandled exception")
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_logged_traceback_names_frames_but_not_their_locals(fmt: str) -> None:
    ran = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", SCRIPT.format(fmt=fmt)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "revoke" in ran.stderr and "the provider's client said no" in ran.stderr
    assert SECRET not in ran.stderr
    if fmt == "json":
        (line,) = ran.stderr.strip().splitlines()
        frames = json.loads(line)["exception"][0]["frames"]
        assert [f["name"] for f in frames][-1] == "revoke"
        assert not any(f.get("locals") for f in frames)
