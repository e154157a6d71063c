"""How read records become webhook bodies.

Each record is rendered as the reference's ResultEntry (proto ampmesh.events.v1.ResultEntry,
JSON mapping) by services/domain/record_shape.py, which says what `fields`,
`mappedFields`, `raw`, `id` and `deleted` (a record deleted in the read's window) hold
and how value mappings apply (search answers records
in the same shape, so rendering lives in services/domain); its functions are imported
here so the read activities keep one shaping module.

Records are rendered once, with orjson, straight from the parsed provider JSON; bodies are
spliced from the rendered bytes, so nothing is parsed or re-encoded on the way to the
receiver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from services.domain.record_shape import Selection, plan_selection, render_record, selection_for

__all__ = [
    "BODY_LIMIT",
    "Selection",
    "pack_bodies",
    "plan_selection",
    "render_record",
    "selection_for",
]

# Largest inline webhook body (read_result.proto: at most 300 KB).
BODY_LIMIT = 300_000


def pack_bodies(
    header: Mapping[str, Any], records: list[bytes], limit: int = BODY_LIMIT
) -> list[tuple[bytes, int]]:
    """WebhookMessage bodies holding the rendered records, in order, each at most limit
    bytes, as (body, record count) pairs. header is the message's JSON mapping without
    `result`; each body gets `resultInfo: {"type": "inline", "numRecords": n}`.

    A record that alone exceeds the limit still goes alone in a body over the limit:
    splitting a record is not possible, and dropping it would lose data silently (the
    caller decides what to do with an oversized body). No records give one empty body.
    """
    base = orjson.dumps({k: v for k, v in header.items() if k not in ("result", "resultInfo")})
    prefix = base[:-1] + (b"," if len(base) > 2 else b"") + b'"resultInfo":{"type":"inline",'
    prefix += b'"numRecords":'
    middle, suffix = b'},"result":[', b"]}"
    # Sized with the widest count any part can have, so every part fits.
    overhead = len(prefix) + len(str(len(records))) + len(middle) + len(suffix)
    parts: list[tuple[bytes, int]] = []
    chunk: list[bytes] = []
    size = overhead
    for record in records:
        added = len(record) + (1 if chunk else 0)
        if chunk and size + added > limit:
            parts.append(_body(prefix, middle, suffix, chunk))
            chunk, size, added = [], overhead, len(record)
        chunk.append(record)
        size += added
    if chunk or not parts:
        parts.append(_body(prefix, middle, suffix, chunk))
    return parts


def _body(prefix: bytes, middle: bytes, suffix: bytes, chunk: list[bytes]) -> tuple[bytes, int]:
    count = len(chunk)
    return b"".join((prefix, str(count).encode(), middle, b",".join(chunk), suffix)), count
