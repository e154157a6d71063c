"""accepted.py lists exactly the errors the reference documents in another media type than
problem+json: an entry the reference no longer needs, or a new quirk nobody weighed, fails."""

from __future__ import annotations

from tests.fuzz.accepted import ACCEPTED_DIFFERENCES, PROBLEM
from tests.fuzz.harness import documented_media_types
from tests.support.reference import operations


def test_accepted_differences_are_the_references_own() -> None:
    documented = set()
    for operation in operations():
        for status in operation.spec.get("responses", {}):
            if str(status)[0] not in "45":
                continue
            media_types = documented_media_types(operation, int(status))
            if media_types and PROBLEM not in media_types:
                documented.add((operation.host, operation.method, operation.path, str(status)))
    assert set(ACCEPTED_DIFFERENCES) == documented
    assert all(reason.strip() for reason in ACCEPTED_DIFFERENCES.values())
