"""JSON Patch (RFC 6902) of one object's config, applied with the `jsonpatch` library.

`PatchObjectConfigContent` takes a list of operations on one object's config (the
reference's JSON, as `json_format.MessageToDict` writes it). Only add, remove and replace
are accepted, as the contract says; move, copy and test are refused like any unknown op.
An operation that cannot be applied is a `PatchError` naming it (its number, op and path)
and why, which the servicer answers as INVALID_ARGUMENT on `body.changes`.

Two choices keep what callers saw before the library was used: an add or replace without
a value sets null (the contract's `value` is optional; null then clears the field when the
result is parsed back into a ConfigContent), and a missing object member is named by its
key, not by dumping the document it is missing from (the library's default text).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import jsonpatch

# The operations the contract allows (JsonPatchOperation.op).
OPS = ("add", "remove", "replace")
_OPERATIONS: Mapping[str, type[jsonpatch.PatchOperation]] = {
    "add": jsonpatch.AddOperation,
    "remove": jsonpatch.RemoveOperation,
    "replace": jsonpatch.ReplaceOperation,
}


class PatchError(ValueError):
    """An operation that cannot be applied; the text names it and says why."""


class _Pointer(jsonpatch.JsonPointer):
    """The library's JSON Pointer, with texts that name the pointer's own parts.

    jsonpointer says "member 'x' not found in {the whole document}" by default; a caller
    needs the member's name, and the document can be large."""

    def __init__(self, pointer: str) -> None:
        if pointer and not pointer.startswith("/"):
            raise jsonpatch.JsonPointerException(
                f"{pointer!r} is not a JSON Pointer (it must start with '/')"
            )
        super().__init__(pointer)

    def walk(self, doc: Any, part: str | int) -> Any:
        if isinstance(doc, Mapping) and part not in doc:
            raise jsonpatch.JsonPointerException(f"{part!r} does not exist")
        return super().walk(doc, part)


def apply_changes(document: Any, operations: Iterable[tuple[str, str, Any]]) -> Any:
    """document (left unchanged) with the operations (op, path, value) applied in order;
    PatchError naming the first that cannot be. value None stands for a missing value."""
    patched = copy.deepcopy(document)
    for number, (op, path, value) in enumerate(operations, start=1):
        where = f"operation {number} ({op} {path!r})"
        kind = _OPERATIONS.get(op)
        if kind is None:
            raise PatchError(f"{where}: op must be {', '.join(OPS[:-1])} or {OPS[-1]}")
        if op == "remove" and path == "":
            raise PatchError(f"{where}: the whole document cannot be removed")
        try:
            operation = kind({"op": op, "path": path, "value": value}, pointer_cls=_Pointer)
            patched = operation.apply(patched)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
            raise PatchError(f"{where}: {error}") from error
    return patched
