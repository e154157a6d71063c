"""What the shared runtime costs per RPC, measured against a bare server in the same run.

Two servers answer the same trivial unary RPC over the same mTLS setup:
  bare  grpc.aio with mutual TLS and nothing else;
  mesh  services.runtime's MeshServer: request id, access log, Prometheus metrics,
        authorization and error interceptors, health, caller identity.
Each runs in its own process (the client would otherwise compete with it for the event
loop); the client drives it with concurrent callers for a fixed time. Rounds alternate
bare, mesh, bare, mesh… so machine noise hits both, and the medians are compared.

    .venv/bin/python -m bench.runtime_overhead [--seconds 4] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

from services.runtime.channels import mesh_channel
from services.runtime.logs import configure_logging
from services.runtime.server import MeshServer, Service
from services.runtime.tls import ensure_service_credentials, server_credentials

METHOD = "/ampmesh.bench.v1.Echo/Echo"
SERVER_IDENTITY = "bench-server"


def _echo_handler() -> grpc.GenericRpcHandler:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    return grpc.method_handlers_generic_handler(
        "ampmesh.bench.v1.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )


async def _serve(kind: str, cert_dir: Path) -> None:
    """Run one server until stdin closes; print its port on stdout first."""
    credentials = ensure_service_credentials(cert_dir, SERVER_IDENTITY)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), stop.set)
    if kind == "bare":
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers((_echo_handler(),))
        port = server.add_secure_port("127.0.0.1:0", server_credentials(credentials))
        await server.start()
        print(port, flush=True)
        await stop.wait()
        await server.stop(0)
        return
    # As deployed: an access log line per RPC (BENCH_LOG_LEVEL=warning measures without).
    configure_logging(os.environ.get("BENCH_LOG_LEVEL", "info"), "json")
    service = Service.from_handler("ampmesh.bench.v1.Echo", _echo_handler())
    async with MeshServer(credentials=credentials, services=[service], grace_period=0) as mesh:
        print(mesh.port, flush=True)
        await stop.wait()


async def _drive(port: int, cert_dir: Path, seconds: float, concurrency: int) -> dict[str, float]:
    credentials = ensure_service_credentials(cert_dir, "bench-client")
    latencies: list[float] = []
    async with mesh_channel(
        f"127.0.0.1:{port}", credentials, server_identity=SERVER_IDENTITY, retry=None
    ) as channel:
        call = channel.unary_unary(METHOD)
        for _ in range(50):  # warm the connection and the server's code paths
            await call(b"x", timeout=5)
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await call(b"x" * 64, timeout=5)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


async def _round(kind: str, cert_dir: Path, seconds: float, concurrency: int) -> dict[str, float]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.runtime_overhead",
        "--serve",
        kind,
        "--cert-dir",
        str(cert_dir),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None and process.stdin is not None
    port = int((await asyncio.wait_for(process.stdout.readline(), 30)).decode())
    try:
        return await _drive(port, cert_dir, seconds, concurrency)
    finally:
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 30)


async def _bench(seconds: float, rounds: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        cert_dir = Path(directory)
        ensure_service_credentials(cert_dir, SERVER_IDENTITY)
        results: dict[str, list[dict[str, float]]] = {"bare": [], "mesh": []}
        for _ in range(rounds):
            for kind in ("bare", "mesh"):
                results[kind].append(await _round(kind, cert_dir, seconds, concurrency))
    median = {
        kind: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for kind, runs in results.items()
    }
    bare, mesh = median["bare"], median["mesh"]
    print(
        f"unary RPC over mTLS, {concurrency} concurrent callers, {rounds} rounds of "
        f"{seconds:.0f}s each, medians:"
    )
    for kind in ("bare", "mesh"):
        m = median[kind]
        print(
            f"  {kind:<5} {m['rps']:8.0f} req/s   p50 {m['p50_ms']:6.2f} ms   "
            f"p99 {m['p99_ms']:6.2f} ms"
        )
    print(
        f"  mesh/bare throughput ratio {mesh['rps'] / bare['rps']:.2f}; "
        f"added p50 {mesh['p50_ms'] - bare['p50_ms']:+.2f} ms, "
        f"p99 {mesh['p99_ms'] - bare['p99_ms']:+.2f} ms"
    )
    print(json.dumps({"median": median, "ratio": mesh["rps"] / bare["rps"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve", choices=["bare", "mesh"], help=argparse.SUPPRESS)
    parser.add_argument("--cert-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.cert_dir))
    else:
        asyncio.run(_bench(args.seconds, args.rounds, args.concurrency))


if __name__ == "__main__":
    main()
