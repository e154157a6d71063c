"""Structured logging: one JSON object per line on stderr, through structlog.

Log lines made with the stdlib `logging` module (grpc, asyncio, libraries) go through the
same renderer, so a service's output is uniformly machine-readable. Context bound with
structlog.contextvars (the request id, by the interceptors) is merged into every line, and
so are `trace_id` and `span_id` while a span is active (once tracing.py switched them on).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from opentelemetry.trace import get_current_span

HTTP_CLIENT_LOGGERS = ("httpx", "httpx2", "httpcore")

# Set by tracing.setup_tracing: until then the trace processor returns at its first line.
_trace_ids = False


def include_trace_ids(on: bool = True) -> None:
    """Add `trace_id`/`span_id` to every line logged while a span is active."""
    global _trace_ids
    _trace_ids = on


def _add_trace_ids(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    if _trace_ids:
        context = get_current_span().get_span_context()
        if context.is_valid:
            event["trace_id"] = format(context.trace_id, "032x")
            event["span_id"] = format(context.span_id, "016x")
    return event


def configure_logging(level: str = "info", fmt: str = "json", *, cache: bool = True) -> None:
    """Configure structlog and stdlib logging for a service process (call once, at start)."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    renderer: Any
    # Tracebacks without the frames' local variables: structlog and rich print them by
    # default, and a local may be a token, a key or a password (one was, in a revocation).
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )
        exc: list[Any] = []  # the console renderer prints tracebacks itself
    else:
        renderer = structlog.processors.JSONRenderer()
        exc = [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        ]

    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), *exc, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=cache,
    )

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, *exc],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # HTTP clients log every request's URL at INFO, and a provider URL may carry a secret
    # (HubSpot revokes at /refresh-tokens/<token>; some providers take API keys in the
    # query): only their warnings get through.
    for name in HTTP_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


def get_logger(name: str) -> Any:
    """A structlog logger; `name` shows up as the "component" field.

    Initial values (not .bind()) keep the logger lazy: it is assembled on first use, after
    configure_logging() ran, even when created at import time.
    """
    return structlog.get_logger(component=name)
