"""The event bus's topics and subscriptions, as the contract declares them.

`proto/ampmesh/events/v1/topics.proto` names, on each `Topic` value, its Pub/Sub topic id
(`pubsub_topic_id`) and the services that consume it (`pubsub_subscribers`). From those:

- the topic `<topic id>`;
- per subscriber, the subscription `<topic id>.<service>`: unordered, ack deadline 30 s,
  redelivery backed off exponentially (10 s to 600 s), and after 5 delivery attempts the
  message goes to the dead-letter topic `<topic id>.<service>.dead-letter`;
- on each dead-letter topic a subscription of the same name, so dead letters are kept
  for inspection (nothing consumes it).

`topology(project)` computes that (pure). `reconcile(clients, layout)` applies it through
admin clients (`AdminClients.emulator(host)` or `AdminClients.cloud()`, Application
Default Credentials): it creates what is missing, reports what existed and which existing
subscriptions differ from the contract (and, asked to, updates them); `ampmesh topology
apply` is its command. `ensure_topology(host, project)` creates it on a Pub/Sub emulator,
leaving whatever already exists as it is.
`emulator_publisher(host)` / `emulator_subscriber(host)` are admin (GAPIC) clients bound
to an emulator over an insecure channel, without touching PUBSUB_EMULATOR_HOST (which
would redirect every client in the process).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, cast

import grpc
from ampmesh.events.v1 import topics_pb2
from google.api_core.exceptions import AlreadyExists, NotFound
from google.api_core.gapic_v1.method import DEFAULT, _MethodDefault
from google.api_core.retry import Retry
from google.protobuf import duration_pb2, field_mask_pb2
from google.pubsub_v1 import PublisherClient, SubscriberClient
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport
from google.pubsub_v1.types import DeadLetterPolicy, RetryPolicy, UpdateSubscriptionRequest
from google.pubsub_v1.types import Subscription as SubscriptionRequest

if TYPE_CHECKING:
    from google.protobuf.descriptor_pb2 import EnumValueOptions
    from google.protobuf.internal.containers import RepeatedScalarFieldContainer
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

# The generated .pyi types extensions as plain FieldDescriptors; say what they hold.
_TOPIC_ID = cast("_ExtensionFieldDescriptor[EnumValueOptions, str]", topics_pb2.pubsub_topic_id)
_SUBSCRIBERS = cast(
    "_ExtensionFieldDescriptor[EnumValueOptions, RepeatedScalarFieldContainer[str]]",
    topics_pb2.pubsub_subscribers,
)

DEAD_LETTER_SUFFIX = ".dead-letter"
# Delivery attempts before a message goes to its dead-letter topic (scribe caps its own
# retries at the same number).
MAX_DELIVERY_ATTEMPTS = 5
# Admin calls against a local emulator: one attempt each, failing fast, rather than the
# client's default retries (which outlive the call's timeout while the emulator is down).
_ADMIN_TIMEOUT = 10.0
# Against Cloud Pub/Sub: the clients' retries, within this many seconds per call.
_CLOUD_TIMEOUT = 60.0

OptionalRetry = Retry | None


@dataclass(frozen=True)
class Subscription:
    name: str  # the subscription id, e.g. "ampmesh-read-results.messenger"
    topic: str  # the topic id it reads
    dead_letter_topic: str | None = None  # None: dead letters' own subscriptions
    ack_deadline_seconds: int = 30
    max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS
    minimum_backoff: timedelta = timedelta(seconds=10)
    maximum_backoff: timedelta = timedelta(seconds=600)


@dataclass(frozen=True)
class Topology:
    project: str
    topics: tuple[str, ...]  # topic ids, dead-letter topics included
    subscriptions: tuple[Subscription, ...]

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{subscription}"

    def subscription(self, name: str) -> Subscription:
        return next(s for s in self.subscriptions if s.name == name)


def topic_id(topic: int) -> str:
    """The Pub/Sub topic id the contract gives a Topic value ("" for TOPIC_UNSPECIFIED)."""
    value = topics_pb2.Topic.DESCRIPTOR.values_by_number[topic]
    return value.GetOptions().Extensions[_TOPIC_ID]


def subscription_id(topic: int, service: str) -> str:
    """The subscription the contract gives `service` on a Topic value: `<topic id>.<service>`.
    ValueError when topics.proto does not list the service among the topic's subscribers,
    so that a consumer and the launcher (which creates only the declared ones) cannot
    disagree."""
    options = topics_pb2.Topic.DESCRIPTOR.values_by_number[topic].GetOptions()
    if service not in options.Extensions[_SUBSCRIBERS]:
        name = topics_pb2.Topic.Name(topic)
        raise ValueError(f"topics.proto does not list {service!r} as a subscriber of {name}")
    return f"{options.Extensions[_TOPIC_ID]}.{service}"


def subscriptions_of(service: str) -> tuple[str, ...]:
    """Every subscription the contract gives `service`, in the Topic enum's order."""
    return tuple(
        f"{value.GetOptions().Extensions[_TOPIC_ID]}.{service}"
        for value in topics_pb2.Topic.DESCRIPTOR.values
        if service in value.GetOptions().Extensions[_SUBSCRIBERS]
    )


def topology(project: str) -> Topology:
    """Every topic and subscription the contract declares, for one project."""
    topics: list[str] = []
    dead_letter_topics: list[str] = []
    subscriptions: list[Subscription] = []
    dead_letter_subscriptions: list[Subscription] = []
    for value in topics_pb2.Topic.DESCRIPTOR.values:
        options = value.GetOptions()
        topic = options.Extensions[_TOPIC_ID]
        if not topic:
            continue
        topics.append(topic)
        for service in options.Extensions[_SUBSCRIBERS]:
            name = f"{topic}.{service}"
            dead_letter = name + DEAD_LETTER_SUFFIX
            subscriptions.append(Subscription(name, topic, dead_letter))
            dead_letter_topics.append(dead_letter)
            dead_letter_subscriptions.append(Subscription(dead_letter, dead_letter))
    return Topology(
        project,
        tuple(topics + dead_letter_topics),
        tuple(subscriptions + dead_letter_subscriptions),
    )


def emulator_publisher(host: str) -> PublisherClient:
    """A Publisher admin client for the emulator at host ("127.0.0.1:8085")."""
    return PublisherClient(transport=PublisherGrpcTransport(channel=grpc.insecure_channel(host)))


def emulator_subscriber(host: str) -> SubscriberClient:
    """A Subscriber admin client for the emulator at host."""
    return SubscriberClient(transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(host)))


def _duration(value: timedelta) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(value)
    return duration


def _request(layout: Topology, subscription: Subscription) -> SubscriptionRequest:
    request = SubscriptionRequest(
        name=layout.subscription_path(subscription.name),
        topic=layout.topic_path(subscription.topic),
        ack_deadline_seconds=subscription.ack_deadline_seconds,
        enable_message_ordering=False,
    )
    if subscription.dead_letter_topic is not None:
        request.dead_letter_policy = DeadLetterPolicy(
            dead_letter_topic=layout.topic_path(subscription.dead_letter_topic),
            max_delivery_attempts=subscription.max_delivery_attempts,
        )
        request.retry_policy = RetryPolicy(
            minimum_backoff=_duration(subscription.minimum_backoff),
            maximum_backoff=_duration(subscription.maximum_backoff),
        )
    return request


@dataclass
class AdminClients:
    """The two admin (GAPIC) clients applying a topology, and how their calls behave:
    against an emulator one fast attempt each (`emulator`); against Cloud Pub/Sub the
    clients' default retries (`cloud`). Close with close() or use as a context manager."""

    publisher: PublisherClient
    subscriber: SubscriberClient
    retry: OptionalRetry | _MethodDefault = None
    timeout: float = _ADMIN_TIMEOUT

    @classmethod
    def emulator(cls, host: str) -> AdminClients:
        return cls(emulator_publisher(host), emulator_subscriber(host))

    @classmethod
    def cloud(cls) -> AdminClients:
        """Clients of Cloud Pub/Sub with Application Default Credentials (the environment's
        GOOGLE_APPLICATION_CREDENTIALS, workload identity, gcloud's login):
        google.auth.exceptions.DefaultCredentialsError when there are none."""
        return cls(PublisherClient(), SubscriberClient(), DEFAULT, _CLOUD_TIMEOUT)

    def close(self) -> None:
        self.publisher.transport.close()
        self.subscriber.transport.close()

    def __enter__(self) -> AdminClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class TopologyReport:
    """What applying a topology found and did, by topic / subscription id."""

    created_topics: list[str] = field(default_factory=list)
    existing_topics: list[str] = field(default_factory=list)
    created_subscriptions: list[str] = field(default_factory=list)
    existing_subscriptions: list[str] = field(default_factory=list)
    # Subscriptions that exist, but not as the contract wants them: id -> what differs.
    differing: dict[str, list[str]] = field(default_factory=dict)
    updated: list[str] = field(default_factory=list)

    @property
    def created(self) -> int:
        return len(self.created_topics) + len(self.created_subscriptions)


def _as_timedelta(value: object) -> timedelta:
    # proto-plus hands Durations out as timedeltas; the stubs say Duration.
    if isinstance(value, duration_pb2.Duration):
        return value.ToTimedelta()
    assert isinstance(value, timedelta)
    return value


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g} s"


def differences(layout: Topology, wanted: Subscription, found: SubscriptionRequest) -> list[str]:
    """How an existing subscription differs from the contract's, one phrase each."""
    problems: list[str] = []
    if found.topic != layout.topic_path(wanted.topic):
        problems.append(
            f"reads {found.topic}, wants {layout.topic_path(wanted.topic)} "
            "(cannot be changed: delete the subscription and apply again)"
        )
    if found.ack_deadline_seconds != wanted.ack_deadline_seconds:
        problems.append(
            f"ack deadline {found.ack_deadline_seconds} s, wants {wanted.ack_deadline_seconds} s"
        )
    has_policy = "dead_letter_policy" in found and bool(found.dead_letter_policy.dead_letter_topic)
    if wanted.dead_letter_topic is None:
        if has_policy:
            problems.append("has a dead-letter policy, wants none")
        return problems
    dead_letter_topic = layout.topic_path(wanted.dead_letter_topic)
    if not has_policy:
        problems.append(f"no dead-letter policy, wants {dead_letter_topic}")
    else:
        policy = found.dead_letter_policy
        if policy.dead_letter_topic != dead_letter_topic:
            problems.append(
                f"dead letters go to {policy.dead_letter_topic}, wants {dead_letter_topic}"
            )
        if policy.max_delivery_attempts != wanted.max_delivery_attempts:
            problems.append(
                f"dead-letters after {policy.max_delivery_attempts} attempts, "
                f"wants {wanted.max_delivery_attempts}"
            )
    wants = f"{_seconds(wanted.minimum_backoff)} to {_seconds(wanted.maximum_backoff)}"
    if "retry_policy" not in found:
        problems.append(f"no retry backoff, wants {wants}")
        return problems
    have = (
        _as_timedelta(found.retry_policy.minimum_backoff),
        _as_timedelta(found.retry_policy.maximum_backoff),
    )
    if have != (wanted.minimum_backoff, wanted.maximum_backoff):
        problems.append(f"retry backoff {_seconds(have[0])} to {_seconds(have[1])}, wants {wants}")
    return problems


# What update_subscription may change of ours; the topic and ordering are immutable.
_UPDATABLE = ("ack_deadline_seconds", "dead_letter_policy", "retry_policy")


def reconcile(
    clients: AdminClients, layout: Topology, *, dry_run: bool = False, update: bool = False
) -> TopologyReport:
    """Create every topic, then every subscription, that does not exist yet, and report
    what existed; an existing subscription that differs from the contract is reported,
    and with `update` brought to it (its mutable fields). `dry_run` only looks."""
    report = TopologyReport()
    retry, timeout = clients.retry, clients.timeout
    for topic in layout.topics:
        try:
            clients.publisher.get_topic(
                topic=layout.topic_path(topic), retry=retry, timeout=timeout
            )
        except NotFound:
            if not dry_run:
                try:
                    clients.publisher.create_topic(
                        name=layout.topic_path(topic), retry=retry, timeout=timeout
                    )
                except AlreadyExists:  # made by someone else since we looked
                    report.existing_topics.append(topic)
                    continue
            report.created_topics.append(topic)
        else:
            report.existing_topics.append(topic)
    for subscription in layout.subscriptions:
        request = _request(layout, subscription)
        try:
            found = clients.subscriber.get_subscription(
                subscription=request.name, retry=retry, timeout=timeout
            )
        except NotFound:
            if not dry_run:
                try:
                    clients.subscriber.create_subscription(
                        request=request, retry=retry, timeout=timeout
                    )
                except AlreadyExists:
                    report.existing_subscriptions.append(subscription.name)
                    continue
            report.created_subscriptions.append(subscription.name)
            continue
        report.existing_subscriptions.append(subscription.name)
        problems = differences(layout, subscription, found)
        if not problems:
            continue
        report.differing[subscription.name] = problems
        if update and not dry_run:
            clients.subscriber.update_subscription(
                request=UpdateSubscriptionRequest(
                    subscription=request, update_mask=field_mask_pb2.FieldMask(paths=_UPDATABLE)
                ),
                retry=retry,
                timeout=timeout,
            )
            report.updated.append(subscription.name)
    return report


def apply_topology(host: str, layout: Topology) -> Topology:
    """Create every topic, then every subscription, that does not exist yet, on the
    emulator at host (blocking)."""
    with AdminClients.emulator(host) as clients:
        reconcile(clients, layout)
    return layout


async def ensure_topology(emulator_host: str, project: str) -> Topology:
    """Create the contract's topology on the emulator; the admin calls run on a thread."""
    return await asyncio.to_thread(apply_topology, emulator_host, topology(project))
