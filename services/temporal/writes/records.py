"""Between the workflow contract's messages and the connectors' write dataclasses: an
AsyncWriteInput as the WriteBatch a Writer takes, a WriteOutcome as the AsyncWriteOutput
the workflows keep, and a batch's output split into its operations'.

Pure (no I/O).
"""

from __future__ import annotations

from typing import Any

from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from google.protobuf import json_format, struct_pb2

from services.domain.connectors.writes import WriteBatch, WriteItem, WriteOutcome, WriteType
from services.domain.write_outputs import NO_OUTCOME, finish_output, output_of

WRITE_TYPES: dict[int, WriteType] = {
    writes_pb2.WRITE_TYPE_CREATE: WriteType.CREATE,
    writes_pb2.WRITE_TYPE_UPDATE: WriteType.UPDATE,
    writes_pb2.WRITE_TYPE_DELETE: WriteType.DELETE,
}
# Integers a double holds exactly.
_EXACT = 2**53


def write_type(value: int) -> WriteType:
    try:
        return WRITE_TYPES[value]
    except KeyError:
        raise ValueError(f"type: {value} is not a write type (create, update or delete)") from None


def plain(value: Any) -> Any:
    """A Struct value as the builder most likely sent it: protobuf keeps every JSON number
    as a double, so 5 comes back 5.0; whole numbers become ints again (a provider's
    integer field may refuse 5.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT:
        return int(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    converted: dict[str, Any] = plain(json_format.MessageToDict(struct))
    return converted


def write_batch(request: writes_pb2.AsyncWriteInput, *, may_have_written: bool) -> WriteBatch:
    """The writer's batch for the request (ValueError: a request no attempt can write)."""
    return WriteBatch(
        object_name=request.target.object_name,
        type=write_type(request.type),
        items=[
            WriteItem(
                fields=_dict(record.record),
                record_id=record.record_id,
                associations=[_dict(association) for association in record.associations],
            )
            for record in request.records
        ],
        all_or_none=request.all_or_none,
        headers={header.key: header.value for header in request.headers},
        may_have_written=may_have_written,
        single=not request.batch,
    )


def write_output(
    request: writes_pb2.AsyncWriteInput, outcome: WriteOutcome
) -> writes_pb2.AsyncWriteOutput:
    """The workflow's output for what the provider did with each record."""
    return output_of(request.operation_id, outcome, len(request.records))


def split_output(
    operations: writes_pb2.WriteBatcherInput, output: writes_pb2.AsyncWriteOutput
) -> list[writes_pb2.AsyncWriteOutput]:
    """A batch's output as each of its operations' (result i is the record of
    operations.pending[i]); an operation's one record is its index 0."""
    by_index = {result.index: result for result in output.results}
    split = []
    for index, queued in enumerate(operations.pending):
        own = writes_pb2.AsyncWriteOutput(operation_id=queued.operation_id)
        result = own.results.add()
        found = by_index.get(index)
        if found is None:
            result.errors.extend(output.errors or [NO_OUTCOME])
        else:
            result.CopyFrom(found)
        result.index = 0
        split.append(finish_output(own))
    return split
