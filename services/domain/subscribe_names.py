"""The names every side of subscribe actions agrees on: the api (installations start
SyncSubscriptions; the webhook ingress verifies and normalizes), temporal (registers at
providers; maps events to installations) and the sandbox (plays the providers' side).

HubSpot's webhooks API names events `<singular object>.<kind>` (`contact.creation`),
with one `propertyChange` subscription per watched property; Salesforce's change data
capture names a channel member `<object>ChangeEvent` (`Foo__ChangeEvent` for the custom
object `Foo__c`) and each event's `ChangeEventHeader.changeType` CREATE, UPDATE, DELETE,
UNDELETE or a GAP_*/overflow type.
"""

from __future__ import annotations

import hashlib

SUBSCRIBE_QUEUE = "subscribe"
SYNC_WORKFLOW = "SyncSubscriptions"

# The public base URL of the edge's subscribe host (the reference's
# subscribe-webhook.withampersand.com), as providers reach it. The launcher sets it to the
# local edge's subscribe listener; a deployment sets its public name.
PUBLIC_URL_SETTING = "AMPMESH_SUBSCRIBE_WEBHOOK_URL"

# The URL the provider called, as the edge saw it (scheme, host, path and query), set by
# the edge on every request to the subscribe host (a client's own value is replaced).
ORIGINAL_URI_HEADER = "x-ampmesh-original-uri"
# The token a Salesforce event relay presents on an installation's own URL.
RELAY_TOKEN_HEADER = "x-ampmesh-relay-token"  # noqa: S105 (a header name)
HUBSPOT_SIGNATURE_HEADER = "x-hubspot-signature-v3"
HUBSPOT_TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
# HubSpot's rule: requests signed longer ago than this are refused.
HUBSPOT_MAX_AGE_SECONDS = 300

# Normalized event types (`subscribeEventType` in deliveries).
CREATE, UPDATE, DELETE, ASSOCIATION_UPDATE, OTHER = (
    "create",
    "update",
    "delete",
    "associationUpdate",
    "other",
)

# HubSpot object name (CRM v3 path) -> its event prefix.
HUBSPOT_EVENT_OBJECTS = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "tickets": "ticket",
}
_HUBSPOT_KINDS = {
    "creation": CREATE,
    "propertyChange": UPDATE,
    "deletion": DELETE,
    "associationChange": ASSOCIATION_UPDATE,
}
_HUBSPOT_KIND_OF = {kind: name for name, kind in _HUBSPOT_KINDS.items()}

_SALESFORCE_CHANGE_TYPES = {
    "CREATE": CREATE,
    "UPDATE": UPDATE,
    "DELETE": DELETE,
    "UNDELETE": CREATE,
}


def sync_workflow_id(installation_id: str, change: int) -> str:
    """One run per committed change of an installation's subscribe objects, so a retried
    start of the same change is refused by Temporal and a newer change runs again."""
    return f"subscriptions/{installation_id}/{change}"


def integration_webhook_path(project_id: str, integration_id: str) -> str:
    return f"/v1/projects/{project_id}/integrations/{integration_id}"


def installation_webhook_path(project_id: str, integration_id: str, installation_id: str) -> str:
    return f"{integration_webhook_path(project_id, integration_id)}/installations/{installation_id}"


def hubspot_event_type(object_name: str, subscribe_event_type: str) -> str | None:
    """`contacts`, `update` -> `contact.propertyChange`; None when HubSpot has no such
    event (an object outside HUBSPOT_EVENT_OBJECTS, or `other`)."""
    prefix = HUBSPOT_EVENT_OBJECTS.get(object_name)
    kind = _HUBSPOT_KIND_OF.get(subscribe_event_type)
    return f"{prefix}.{kind}" if prefix and kind else None


def parse_hubspot_event_type(subscription_type: str) -> tuple[str, str] | None:
    """`contact.propertyChange` -> (`contacts`, `update`); other recognized objects'
    unknown kinds (`contact.merge`) -> (object, `other`); None for an unknown object."""
    prefix, _, kind = subscription_type.partition(".")
    objects = {singular: name for name, singular in HUBSPOT_EVENT_OBJECTS.items()}
    if prefix not in objects:
        return None
    return objects[prefix], _HUBSPOT_KINDS.get(kind, OTHER)


def salesforce_channel_entity(object_name: str) -> str:
    """`Account` -> `AccountChangeEvent`; `Invoice__c` -> `Invoice__ChangeEvent`."""
    if object_name.endswith("__c"):
        return f"{object_name[:-3]}__ChangeEvent"
    return f"{object_name}ChangeEvent"


def salesforce_object_of_entity(entity: str) -> str:
    """The inverse of salesforce_channel_entity."""
    if entity.endswith("__ChangeEvent"):
        return f"{entity[: -len('__ChangeEvent')]}__c"
    return entity.removesuffix("ChangeEvent")


def salesforce_event_type(change_type: str) -> str:
    """CREATE/UPDATE/DELETE/UNDELETE -> create/update/delete/create; GAP_* and the
    overflow types -> other (the event says changes happened without saying which)."""
    return _SALESFORCE_CHANGE_TYPES.get(change_type, OTHER)


def relay_token_digest(token: str) -> bytes:
    """What `subscriptions.relay_token_sha256` holds for a Salesforce relay's token
    (temporal stores it at registration, the api checks requests against it)."""
    return hashlib.sha256(token.encode()).digest()


def same_account(registered: str, given: str) -> bool:
    """Whether an event's account is the installation's. Salesforce org ids come in a
    15-character case-sensitive form and an 18-character one (the same plus a checksum
    suffix): an id learned in one form matches events naming it in the other."""
    if not registered or not given:
        return False
    if registered == given:
        return True
    return {len(registered), len(given)} == {15, 18} and registered[:15] == given[:15]
