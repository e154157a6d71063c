"""The TokenKeepAlive workflow: walks OAuth connections in batches, one activity each.

The workflow sandbox re-imports this module on every run, so it imports only the
generated messages (passed through by the worker) and temporalio: the activity itself
(asyncpg, grpc) lives in activities.py and is called by name.
"""

from __future__ import annotations

from datetime import timedelta

from ampmesh.events.v1 import envelope_pb2
from ampmesh.workflows.v1 import token_keep_alive_pb2 as keep_alive_pb2
from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_NAME = "TokenKeepAlive"
BATCH_ACTIVITY = "keep_alive_batch"

DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 1000
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 32
# Each batch adds a handful of events to the history; continuing as new after this many
# keeps a pass over a million connections as cheap to replay as one over a hundred.
BATCHES_PER_RUN = 50

# A batch is 100 refreshes at 4 at a time, each bounded by its RPC deadline (activities.py).
BATCH_TIMEOUT = timedelta(minutes=15)
# The activity heartbeats after every connection; silence this long means it is stuck.
BATCH_HEARTBEAT_TIMEOUT = timedelta(minutes=1)
# One connection never fails a batch, so a retry here is for the unexpected (the
# database or the worker went away); after these attempts the run fails and the next
# scheduled run starts over.
BATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=5,
)


def add_counts(
    total: keep_alive_pb2.TokenKeepAliveCounts, more: keep_alive_pb2.TokenKeepAliveCounts
) -> None:
    total.examined += more.examined
    total.refreshed += more.refreshed
    total.skipped += more.skipped
    total.failed += more.failed
    total.bad_credentials += more.bad_credentials


def bounded(value: int, default: int, maximum: int) -> int:
    """An input's size or concurrency: 0 (or less) means the default."""
    return default if value <= 0 else min(value, maximum)


@workflow.defn(name=WORKFLOW_NAME)
class TokenKeepAlive:
    """Refreshes the OAuth connections nothing refreshed within the idle threshold."""

    @workflow.run
    async def run(
        self, request: keep_alive_pb2.TokenKeepAliveInput
    ) -> keep_alive_pb2.TokenKeepAliveOutput:
        meta = self._meta(request.meta)
        counts = keep_alive_pb2.TokenKeepAliveCounts()
        after = request.after_connection_id
        for _ in range(BATCHES_PER_RUN):
            batch = keep_alive_pb2.TokenKeepAliveBatchInput(
                meta=meta,
                provider=request.provider,
                batch_size=bounded(request.batch_size, DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE),
                concurrency=bounded(request.concurrency, DEFAULT_CONCURRENCY, MAX_CONCURRENCY),
                after_connection_id=after,
            )
            batch.meta.type = keep_alive_pb2.TokenKeepAliveBatchInput.DESCRIPTOR.full_name
            batch.meta.idempotency_key = f"{meta.idempotency_key}/after/{after}"
            if request.HasField("idle_threshold"):
                batch.idle_threshold.CopyFrom(request.idle_threshold)
            result: keep_alive_pb2.TokenKeepAliveBatchOutput = await workflow.execute_activity(
                BATCH_ACTIVITY,
                batch,
                result_type=keep_alive_pb2.TokenKeepAliveBatchOutput,
                start_to_close_timeout=BATCH_TIMEOUT,
                heartbeat_timeout=BATCH_HEARTBEAT_TIMEOUT,
                retry_policy=BATCH_RETRY,
            )
            add_counts(counts, result.counts)
            after = result.last_connection_id or after
            if result.done:
                return keep_alive_pb2.TokenKeepAliveOutput(counts=counts)
            if workflow.info().is_continue_as_new_suggested():
                break
        # The input has no field carrying totals across runs, so each run reports its
        # own; the log keeps what the earlier ones did.
        workflow.logger.info(
            "keep-alive continues as new",
            extra={"after": after, "examined": counts.examined, "refreshed": counts.refreshed},
        )
        following = keep_alive_pb2.TokenKeepAliveInput()
        following.CopyFrom(request)
        following.meta.CopyFrom(meta)
        following.after_connection_id = after
        workflow.continue_as_new(following)

    @staticmethod
    def _meta(given: envelope_pb2.EventMeta) -> envelope_pb2.EventMeta:
        """The run's meta: the schedule's fixed one, completed from the run itself (the
        schedule's argument is fixed when it is created, so it carries no time or key)."""
        meta = envelope_pb2.EventMeta()
        meta.CopyFrom(given)
        meta.type = meta.type or keep_alive_pb2.TokenKeepAliveInput.DESCRIPTOR.full_name
        meta.source = meta.source or "temporal"
        if not meta.HasField("time"):
            meta.time.FromDatetime(workflow.now())
        if not meta.idempotency_key:
            meta.idempotency_key = workflow.info().workflow_id
        if not meta.id:
            meta.id = str(workflow.uuid4())
        return meta
