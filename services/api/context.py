"""What every platform servicer of the api shares: the database pool, the secret box, the
catalog, the authenticator, the deployment's settings, the token-manager, the HTTP
session providers are called with, and the api's event bus and workflow starters.

Servicers take an ApiContext and nothing else, so a test can build one against the real
database of the session's stack (see tests/api) and call a servicer in-process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
import asyncpg
from ampmesh.messenger.v1 import messenger_pb2_grpc
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2_grpc

from services.api.auth import Authenticator
from services.api.metadata_cache import FieldMetadataCache
from services.api.provider_auths import ProviderAuths
from services.api.reads import Reads
from services.api.writes import Writes
from services.runtime.events import EventBus
from services.runtime.secretbox import SecretBox


@dataclass(frozen=True)
class ApiPolicy:
    """Deployment choices the control plane enforces."""

    # Webhook destinations may use http:// on loopback (on for the local mesh, off in
    # production settings, where destinations resolving to private addresses are refused).
    allow_loopback_webhooks: bool = False
    refuse_private_destinations: bool = True
    # Where providers send the browser back after authorization (the api host's
    # /callbacks/v1/oauth as the outside world reaches it); empty: OAuth connect refuses.
    oauth_callback_url: str = ""
    # How long an authorization URL handed out by oauth-connect stays usable.
    oauth_state_seconds: int = 600


@dataclass(frozen=True)
class ApiContext:
    pool: asyncpg.Pool
    secrets: SecretBox
    catalog: Mapping[str, providers_pb2.ProviderInfo]
    auth: Authenticator
    policy: ApiPolicy
    # The token-manager shards (through the edge), which hold connections' credentials;
    # None when the deployment gives no address, and connections then answer UNAVAILABLE.
    tokens: token_manager_pb2_grpc.TokenManagerServiceStub | None = None
    # The read workflows (Temporal); None when the deployment gives no Temporal address,
    # and installations then save their configs without scheduling any read.
    reads: Reads | None = None
    # Messenger, which keeps webhook deliveries (DeliveryService asks it); None when the
    # deployment gives no address, and deliveries then answer UNAVAILABLE.
    messenger: messenger_pb2_grpc.MessengerServiceStub | None = None
    # The HTTP session the api calls providers with (object metadata, hydrated revisions,
    # search: services/api/provider_calls.py); None in contexts that never call one.
    http: aiohttp.ClientSession | None = None
    # Providers' object descriptions, shared by hydrate and the object-metadata RPCs.
    field_metadata: FieldMetadataCache = field(default_factory=FieldMetadataCache)
    # The api's own events (write operations) through its outbox; None when the
    # deployment gives no Pub/Sub project, and writes then answer UNAVAILABLE.
    events: EventBus | None = None
    # The write workflows (Temporal, the same client as reads); None without Temporal,
    # and asynchronous writes then answer UNAVAILABLE.
    writes: Writes | None = None
    # Connections' provider auth, reused for a few seconds (services/api/provider_calls.py).
    provider_auths: ProviderAuths = field(default_factory=ProviderAuths)
