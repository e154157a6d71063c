"""SyncSubscriptions (task queue `subscribe`): keep one installation's provider-side
subscriptions in step with its config.

The api starts it after committing a change to the installation's `subscriptions` row
(workflow id `subscriptions/<installation>/<change>`, so the run knows which change it is
for). load_subscriptions reads the row: none, or a newer change than this run's (that
run does it), ends the run at once; a deleted installation (or the row `removing`) runs
remove_subscriptions (the provider-side subscriptions, then the row, then the connection
the uninstall left for it); otherwise register_subscriptions registers the difference
between what the config asks for and what the row says is registered, and writes the row
back `active`. The provider activities re-read the row and the config on every attempt
under an advisory lock, so a retry or an overlapping older run works from the newest
state.

Retrying: the provider activities are retried by Temporal (1 s doubling to 60 s, or the
provider's Retry-After) while the provider answers 429, 5xx or not at all, for up to
RETRY_WINDOW (the activities make the error final after that: HubSpot's and
Salesforce's registrations usually settle within a minute or two, ten at worst); a
refusal that will not heal (400, 403, a missing app id, a token refused after a refresh)
is final at once. A registration that fails for good marks the row `failed` with its
error and sends `subscribe.create.error` (fail_subscriptions); a removal that fails for
good leaves the row `removing` for the sweeper to try again.

Imports only generated messages, temporalio and the shared names: the workflow sandbox
re-imports this module on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from ampmesh.workflows.v1 import subscriptions_pb2
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from services.domain.subscribe_names import SYNC_WORKFLOW

LOAD_ACTIVITY = "load_subscriptions"
REGISTER_ACTIVITY = "register_subscriptions"
REMOVE_ACTIVITY = "remove_subscriptions"
FAIL_ACTIVITY = "fail_subscriptions"

# What load_subscriptions found the run must do.
NOTHING, REGISTER, REMOVE = "nothing", "register", "remove"

# Error types the provider activities raise (ApplicationError.type).
PROVIDER_UNAVAILABLE = "ProviderUnavailable"
REGISTRATION_REFUSED = "RegistrationRefused"

# How long registration keeps retrying a provider that answers 429, 5xx or nothing.
RETRY_WINDOW = timedelta(minutes=10)
# One attempt: a handful of provider calls, each retried inside for at most
# PROVIDER_WAIT (activities), with room to spare.
ATTEMPT_TIMEOUT = timedelta(minutes=2)
# The backstop when an attempt never reports: the window, a last attempt and its backoff.
GIVE_UP_AFTER = RETRY_WINDOW + timedelta(minutes=4)
HEARTBEAT = timedelta(seconds=30)
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=0,
    non_retryable_error_types=[REGISTRATION_REFUSED],
)
BOOKKEEPING_TIMEOUT = timedelta(minutes=1)
BOOKKEEPING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
)


@dataclass
class SyncCall:
    """What every activity of a run is given."""

    installation_id: str
    integration_id: str
    # The row's change this run is for (0: started by hand, without the api's id).
    change: int
    installation_deleted: bool = False
    # When the run started (ISO 8601): the retry window counts from here.
    started_at: str = ""
    request_id: str = ""


@dataclass
class Loaded:
    """What load_subscriptions found."""

    action: str
    # The row's change (the run's own when it was started by hand).
    change: int = 0
    why: str = ""


@dataclass
class SyncOutcome:
    """What a provider activity did."""

    # False: a newer change has the row now; this run stopped without touching it.
    done: bool = True
    registered_objects: list[str] = field(default_factory=list)
    removed_objects: list[str] = field(default_factory=list)


@dataclass
class Failure:
    call: SyncCall
    error: str
    removal: bool = False


def change_of(workflow_id: str) -> int:
    """The change number at the end of `subscriptions/<installation>/<change>`; 0 when
    the id is not the api's."""
    tail = workflow_id.rpartition("/")[2]
    return int(tail) if tail.isdigit() else 0


def failure_message(error: ActivityError) -> str:
    """The provider activity's own last error, not Temporal's wrapping of it."""
    cause: BaseException | None = error.cause
    while cause is not None:
        if isinstance(cause, ApplicationError):
            return cause.message
        cause = cause.__cause__
    return str(error.cause or error)


@workflow.defn(name=SYNC_WORKFLOW)
class SyncSubscriptions:
    @workflow.run
    async def run(
        self, request: subscriptions_pb2.SyncSubscriptionsInput
    ) -> subscriptions_pb2.SyncSubscriptionsResult:
        info = workflow.info()
        call = SyncCall(
            installation_id=request.installation_id,
            integration_id=request.integration_id,
            change=change_of(info.workflow_id),
            installation_deleted=request.installation_deleted,
            started_at=workflow.now().isoformat(),
            request_id=request.meta.request_id,
        )
        loaded: Loaded = await workflow.execute_activity(
            LOAD_ACTIVITY,
            call,
            result_type=Loaded,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        if loaded.action == NOTHING:
            workflow.logger.info("subscriptions left alone: %s", loaded.why)
            return subscriptions_pb2.SyncSubscriptionsResult()
        call.change = loaded.change
        removal = loaded.action == REMOVE
        try:
            outcome: SyncOutcome = await workflow.execute_activity(
                REMOVE_ACTIVITY if removal else REGISTER_ACTIVITY,
                call,
                result_type=SyncOutcome,
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=GIVE_UP_AFTER,
                heartbeat_timeout=HEARTBEAT,
                retry_policy=PROVIDER_RETRY,
            )
        except ActivityError as error:
            message = failure_message(error)
            await workflow.execute_activity(
                FAIL_ACTIVITY,
                Failure(call=call, error=message, removal=removal),
                start_to_close_timeout=BOOKKEEPING_TIMEOUT,
                retry_policy=BOOKKEEPING_RETRY,
            )
            return subscriptions_pb2.SyncSubscriptionsResult(error=message)
        return subscriptions_pb2.SyncSubscriptionsResult(
            registered_objects=outcome.registered_objects,
            removed_objects=outcome.removed_objects,
        )
