"""A write's outcome as the workflow contract carries it (ampmesh.workflows.v1.
AsyncWriteOutput): per-record results in request order and the totals derived from them.
Both the api (a synchronous write's operation) and the temporal workers (an asynchronous
one's) report through it, so an operation says the same whichever way it ran.

Pure, and importing generated messages only at run time: the workflow sandbox imports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from google.protobuf import json_format

if TYPE_CHECKING:
    from services.domain.connectors.writes import WriteOutcome

NO_OUTCOME = "the writer reported nothing about this record"


def unique(messages: Iterable[str]) -> list[str]:
    """Messages once each, in order (a deadline fails a hundred records with one message)."""
    return list(dict.fromkeys(message for message in messages if message))


def finish_output(output: writes_pb2.AsyncWriteOutput) -> writes_pb2.AsyncWriteOutput:
    """Fill the output's totals from its per-record results (in place; returned)."""
    written = [result for result in output.results if result.success]
    output.success_count = len(written)
    output.failure_count = len(output.results) - len(written)
    output.success = bool(output.results) and output.failure_count == 0
    del output.successful_record_ids[:]
    output.successful_record_ids.extend(r.record_id for r in written if r.record_id)
    output.errors[:] = unique([*output.errors, *(e for r in output.results for e in r.errors)])
    return output


def output_of(
    operation_id: str, outcome: WriteOutcome, records: int
) -> writes_pb2.AsyncWriteOutput:
    """The output for what the provider did with each of `records` records."""
    output = writes_pb2.AsyncWriteOutput(operation_id=operation_id)
    for index in range(records):
        result = output.results.add(index=index)
        if index >= len(outcome.items):
            result.errors.append(NO_OUTCOME)
            continue
        item = outcome.items[index]
        result.success = item.success
        result.record_id = item.record_id
        result.errors.extend(item.errors)
        if not item.success and not item.errors:
            result.errors.append("the provider did not write the record and gave no reason")
        if item.data:
            json_format.ParseDict(item.data, result.data)
    return finish_output(output)
