"""The names both sides of the write workflows agree on: the api starts AsyncWrite and
signals WriteBatcher by these names and ids, the temporal workers register and run them
(services/temporal/writes).

Ids are deterministic: an asynchronous write's workflow is named by its operation, so a
repeated start is refused by Temporal itself; the auto-batching workflow is named by
what it groups (installation, object, type), so every record of a group reaches the one
batcher of that group through signal-with-start.
"""

from __future__ import annotations

WRITES_QUEUE = "writes"

ASYNC_WRITE_WORKFLOW = "AsyncWrite"
WRITE_BATCHER_WORKFLOW = "WriteBatcher"
# WriteBatcher's signal carrying one ampmesh.workflows.v1.QueuedWrite.
ENQUEUE_SIGNAL = "enqueue"

# Records per auto-batch (the reference flushes at 100).
AUTO_BATCH_SIZE = 100


def async_write_workflow_id(operation_id: str) -> str:
    return f"write-async/{operation_id}"


def batcher_workflow_id(installation_id: str, object_name: str, write_type: str) -> str:
    return f"write-batch/{installation_id}/{object_name}/{write_type}"
