"""The provider-facing HTTP API, assembled: each provider's OAuth endpoints
(oauth_routes.py), record APIs (hubspot.py, salesforce.py, mirroring the connectors in
services/domain/connectors/), record writes (hubspot_writes.py, salesforce_writes.py),
webhook registration and token introspection (hubspot_webhooks.py,
salesforce_events.py, whose subscriptions webhooks.py sends change events to),
metadata APIs (hubspot_properties.py,
salesforce_describe.py, over the object schemas of schemas.py) and the echo, download and
upload routes the API proxy's tests call through the proxy (proxy_test.py), all going
through the same fault and token checks (faults.py, record_api.py). Every answer is
counted (see state.Counters). Pages are slices of the store's sorted indexes, rendered
with orjson, so the sandbox is not what limits a benchmark reading through it.
"""

from __future__ import annotations

from starlette.applications import Starlette

from services.sandbox.hubspot import HubSpotApi
from services.sandbox.hubspot_properties import HubSpotProperties
from services.sandbox.hubspot_webhooks import HubSpotWebhooks
from services.sandbox.hubspot_writes import HubSpotWrites
from services.sandbox.oauth import OAuthConfig
from services.sandbox.oauth_routes import OAuthRoutes
from services.sandbox.proxy_test import ProxyTestApi
from services.sandbox.record_api import RecordApi
from services.sandbox.salesforce import SalesforceApi
from services.sandbox.salesforce_describe import SalesforceDescribe
from services.sandbox.salesforce_events import SalesforceEvents
from services.sandbox.salesforce_writes import SalesforceWrites
from services.sandbox.state import SandboxState


class SandboxHttp:
    """The ASGI app over a SandboxState (build with .app())."""

    def __init__(self, state: SandboxState, config: OAuthConfig) -> None:
        self.state = state
        self.config = config
        self.oauth = OAuthRoutes(state, config)
        records = RecordApi(state)
        self.hubspot = HubSpotApi(records)
        self.salesforce = SalesforceApi(records)
        self.hubspot_writes = HubSpotWrites(records)
        self.salesforce_writes = SalesforceWrites(records)
        self.hubspot_properties = HubSpotProperties(records, state.schemas)
        self.salesforce_describe = SalesforceDescribe(records, state.schemas)
        self.proxy_test = ProxyTestApi(records)
        self.hubspot_webhooks = HubSpotWebhooks(records)
        self.salesforce_events = SalesforceEvents(records, self.salesforce_describe.query)

    def app(self) -> Starlette:
        routes = [
            *self.proxy_test.routes(),
            *self.hubspot_webhooks.routes(),
            *self.salesforce_events.routes(),
            *self.oauth.routes(),
            *self.hubspot.routes(),
            *self.salesforce.routes(),
            *self.hubspot_writes.routes(),
            *self.salesforce_writes.routes(),
            *self.hubspot_properties.routes(),
            *self.salesforce_describe.routes(),
            *self.salesforce_events.late_routes(),
        ]
        return Starlette(routes=routes)
