"""Process entry points: `python -m services.<service>` and `ampmesh-service --service NAME`.

A service package ends in a few lines:

    # services/token_manager/__main__.py
    from services.runtime.entrypoint import run_service

    def main() -> None:
        run_service(name="token-manager", services=build_services,
                    allowed_callers=["api", "temporal"], settings_cls=TokenManagerSettings)

    if __name__ == "__main__":
        main()

run_service reads the settings (a bad one exits 2 with one line naming the variable),
configures JSON logging, makes sure the CA and this identity's certificate exist, serves
until SIGTERM/SIGINT, drains, and exits 0. Startup failures (certificates, a busy port)
exit 1 with one log line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NoReturn, TypeVar

from services.runtime.config import ConfigError, ServiceSettings, load_settings
from services.runtime.identity import AccessPolicy
from services.runtime.logs import configure_logging, get_logger
from services.runtime.server import BindError, Service, serve
from services.runtime.tls import CertificateError, ServiceCredentials, ensure_service_credentials
from services.runtime.tracing import setup_tracing

S = TypeVar("S", bound=ServiceSettings)

# Services built from settings, with resources (pools, clients) opened on enter and closed
# on exit, after the server has drained.
ServiceFactory = Callable[[Any], AbstractAsyncContextManager[Sequence[Service]]]

EXIT_OK, EXIT_STARTUP_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


class StartupError(RuntimeError):
    """A service factory cannot open what it needs (a database, Temporal…): the process
    exits 1 with this one-line message instead of a traceback. Never put secrets in it."""


_log = get_logger("ampmesh.entrypoint")


def run_service(
    *,
    name: str,
    services: Sequence[Service] | ServiceFactory,
    allowed_callers: Iterable[str] | AccessPolicy | None = None,
    settings_cls: type[ServiceSettings] = ServiceSettings,
) -> NoReturn:
    """Run one service until SIGTERM; never returns (exits the process)."""
    code = run_service_until_stopped(name, services, allowed_callers, settings_cls)
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: a process that used a Temporal client can abort while the interpreter
    # finalizes (temporalio sdk-python #300), turning a clean exit into SIGABRT. Everything
    # worth keeping is flushed and the server has drained by now.
    os._exit(code)


def run_service_until_stopped(
    name: str,
    services: Sequence[Service] | ServiceFactory,
    allowed_callers: Iterable[str] | AccessPolicy | None = None,
    settings_cls: type[ServiceSettings] = ServiceSettings,
) -> int:
    """run_service without the exit: returns the process exit code."""
    try:
        settings = load_settings(settings_cls, service_name=name)
    except ConfigError as exc:
        # Logging is not configured yet (its level is a setting): a plain line, no traceback.
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    policy = _policy(allowed_callers)
    tracing = setup_tracing(settings)
    try:
        credentials = ensure_service_credentials(
            settings.cert_dir, settings.identity, create=settings.create_certs
        )
        asyncio.run(_serve(settings, services, policy, credentials))
    except (CertificateError, BindError, StartupError) as exc:
        _log.error("cannot start", service=name, error=str(exc))
        return EXIT_STARTUP_FAILED
    finally:
        # After the drain: the last RPCs' spans are batched, not yet sent.
        tracing.shutdown()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> None:
    """`ampmesh-service --service NAME`: run services.<name>'s main()."""
    parser = argparse.ArgumentParser(
        prog="ampmesh-service", description="Run one ampmesh service until SIGTERM."
    )
    parser.add_argument(
        "--service",
        required=True,
        metavar="NAME",
        help="the service to run, e.g. token-manager (the package services.token_manager)",
    )
    args = parser.parse_args(argv)
    entry = find_service_main(args.service)
    if isinstance(entry, str):
        parser.error(entry)
    entry()


def find_service_main(name: str) -> Callable[[], Any] | str:
    """The main() of services.<name> (or of its __main__ module), or why there is none."""
    module_name = "services." + name.replace("-", "_")
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name) or name == "runtime":
        return f"{name!r} is not a service name"
    if importlib.util.find_spec(module_name) is None:
        return f"no service named {name!r} (no module {module_name})"
    for candidate in (module_name, f"{module_name}.__main__"):
        try:
            module = importlib.import_module(candidate)
        except ModuleNotFoundError as exc:
            if exc.name == candidate:
                continue
            raise
        entry = getattr(module, "main", None)
        if callable(entry):
            return entry
    return f"{module_name} has no main()"


async def _serve(
    settings: ServiceSettings,
    services: Sequence[Service] | ServiceFactory,
    policy: AccessPolicy,
    credentials: ServiceCredentials,
) -> None:
    async with _open_services(services, settings) as built:
        # What start-up made (modules, catalog, contracts, pools) lives as long as the
        # process: out of the collector's sight, a full collection walks only what requests
        # allocate, and stalls a busy service for less.
        gc.freeze()
        await serve(settings, built, policy=policy, credentials=credentials)


@asynccontextmanager
async def _open_services(
    services: Sequence[Service] | ServiceFactory, settings: ServiceSettings
) -> AsyncIterator[Sequence[Service]]:
    if callable(services):
        async with services(settings) as built:
            yield built
    else:
        yield services


def _policy(allowed_callers: Iterable[str] | AccessPolicy | None) -> AccessPolicy:
    if allowed_callers is None:
        return AccessPolicy.any_peer()
    if isinstance(allowed_callers, AccessPolicy):
        return allowed_callers
    return AccessPolicy.allow_only(*allowed_callers)


if __name__ == "__main__":
    main()
