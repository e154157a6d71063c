"""What the runtime's request check costs, against parsing the request alone.

The checked deserializer (services/runtime/request_decoding.py) parses a request as grpc
would and looks for a zero byte; only when there is one (or the parse fails) does it walk
the wire format in Python to find a NUL in a string and name its field. Three variants
are timed on the same bytes in the same process, alternating: `parse` (the generated
FromString), `checked` (what every request pays) and `walk` (find_problem: what a request
holding a zero byte pays on top). Three requests a builder sends: a small one (an API
key), a large config (an installation with 40 objects of 30 fields each) and the largest
body the edge lets through (a manifest of nearly 1 MiB). The microseconds say whether it
matters beside an RPC (a REST call through the edge costs about a millisecond).

    .venv/bin/python -m bench.request_decoding [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from ampmesh.platform.v1 import api_keys_pb2, installations_pb2, integrations_pb2

from services.runtime.request_decoding import checked_deserializer, find_problem


def _api_key() -> tuple[str, Any, bytes]:
    request = api_keys_pb2.CreateApiKeyRequest(project_id_or_name="demo")
    request.api_key.label = "ci key for the nightly sync"
    request.api_key.scopes.extend(["full"])
    return (
        "/ampmesh.platform.v1.ApiKeyService/CreateApiKey",
        type(request),
        request.SerializeToString(),
    )


def _installation() -> tuple[str, Any, bytes]:
    request = installations_pb2.CreateInstallationRequest(
        project_id_or_name="demo", integration_id="crm-sync"
    )
    request.installation.group_ref = "acme"
    read = request.installation.config.content.read
    for n in range(40):
        objects = read.objects[f"object{n}"]
        objects.object_name = f"object{n}"
        objects.schedule = "*/30 * * * *"
        for f in range(30):
            objects.selected_fields[f"field_{f}"] = True
            objects.selected_field_mappings[f"mapped{f}"] = f"field_{f}"
    return (
        "/ampmesh.platform.v1.InstallationService/CreateInstallation",
        type(request),
        request.SerializeToString(),
    )


def _manifest() -> tuple[str, Any, bytes]:
    line = "            - fieldName: somewhat_long_field_name_of_a_provider_object\n"
    body = "specVersion: 1.0.0\nintegrations:\n" + line * (1_000_000 // len(line))
    request = integrations_pb2.BatchUpsertIntegrationsRequest(project_id_or_name="demo")
    request.source.source_yaml = body
    return (
        "/ampmesh.platform.v1.IntegrationService/BatchUpsertIntegrations",
        type(request),
        request.SerializeToString(),
    )


def _per_call(parse: Callable[[bytes], Any], data: bytes, seconds: float) -> float:
    """Seconds per call of parse(data), over about `seconds`."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(10):
            parse(data)
        calls += 10
        now = time.perf_counter()
        if now >= deadline:
            return (now - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="per variant and round")
    args = parser.parse_args()
    print(
        f"{'request':<14} {'bytes':>9} {'parse µs':>10} {'checked µs':>11} {'ratio':>6}"
        f" {'walk µs':>9} {'ratio':>6}"
    )
    for name, build in (
        ("api key", _api_key),
        ("installation", _installation),
        ("manifest", _manifest),
    ):
        method, message, data = build()
        checked = checked_deserializer(message.FromString, method)
        assert checked is not None and checked(data).__class__ is message, "refused a good one"
        assert find_problem(data, message.DESCRIPTOR) is None, "found a problem in a good one"

        def walk(data: bytes, descriptor: Any = message.DESCRIPTOR) -> Any:
            return find_problem(data, descriptor)

        plain: list[float] = []
        ours: list[float] = []
        walks: list[float] = []
        for _ in range(args.rounds):
            plain.append(_per_call(message.FromString, data, args.seconds))
            ours.append(_per_call(checked, data, args.seconds))
            walks.append(_per_call(walk, data, args.seconds))
        p, c, w = (statistics.median(x) for x in (plain, ours, walks))
        print(
            f"{name:<14} {len(data):>9} {p * 1e6:>10.1f} {c * 1e6:>11.1f} {c / p:>6.2f}"
            f" {w * 1e6:>9.1f} {w / p:>6.1f}"
        )


if __name__ == "__main__":
    main()
