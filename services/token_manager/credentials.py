"""What the token-manager knows about a Credentials message without storage: whether a
request's credentials are complete, which auth scheme they are, when their access token
expires, and how a provider request carries them (the catalog's attachment rules)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from ampmesh.events.v1 import connection_events_pb2 as events
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.protobuf import json_format

from services.runtime.database import is_uuid

HEADER = tm.ATTACHMENT_LOCATION_HEADER
QUERY = tm.ATTACHMENT_LOCATION_QUERY

# The kinds whose access token comes from a provider's token endpoint, and so can expire
# and be refreshed; API keys, basic and custom values are used as stored.
OAUTH_KINDS = ("oauth2_authorization_code", "oauth2_client_credentials", "oauth2_password")

# Fields each kind cannot do without (paths below body.credentials.<kind>).
_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "oauth2_authorization_code": ("access_token.token",),
    "oauth2_client_credentials": ("client_id", "client_secret"),
    "oauth2_password": ("username", "password", "client_id"),
    "api_key": ("key",),
    "basic": ("username",),
    "custom": (),
}

# Catalog templates are Go text/template; the ones custom auth uses only substitute inputs.
_TEMPLATE_VARIABLE = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def store_violations(
    request: tm.StoreCredentialsRequest, catalog: Mapping[str, providers_pb2.ProviderInfo]
) -> dict[str, str]:
    """Field path → what is wrong, for every problem of a StoreCredentials request."""
    violations: dict[str, str] = {}
    connection = request.connection
    if not request.HasField("connection"):
        violations["body.connection"] = "is required"
    else:
        if not connection.connection_id:
            violations["body.connection.connection_id"] = "is required"
        if not connection.project_id:
            violations["body.connection.project_id"] = "is required"
        elif not is_uuid(connection.project_id):
            violations["body.connection.project_id"] = "must be a project id (a UUID)"
        if not connection.provider:
            violations["body.connection.provider"] = "is required"
        elif connection.provider not in catalog:
            violations["body.connection.provider"] = "is not a provider of the catalog"
    if not request.HasField("credentials"):
        violations["body.credentials"] = "is required"
        return violations
    kind = request.credentials.WhichOneof("kind")
    if kind is None:
        violations["body.credentials"] = "must set one of " + ", ".join(_REQUIRED)
        return violations
    variant = getattr(request.credentials, kind)
    for path in _REQUIRED[kind]:
        if not _field(variant, path):
            violations[f"body.credentials.{kind}.{path}"] = "is required"
    if kind == "custom" and not variant.values.fields:
        violations["body.credentials.custom.values"] = "must hold at least one value"
    return violations


def exchange_violations(
    request: tm.ExchangeAuthorizationCodeRequest,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
) -> dict[str, str]:
    """Field path → what is wrong, for every problem of an ExchangeAuthorizationCode."""
    violations: dict[str, str] = {}
    connection = request.connection
    for name in ("connection_id", "project_id", "provider", "provider_app_id"):
        if not getattr(connection, name):
            violations[f"body.connection.{name}"] = "is required"
    if connection.project_id and not is_uuid(connection.project_id):
        violations["body.connection.project_id"] = "must be a project id (a UUID)"
    provider = catalog.get(connection.provider) if connection.provider else None
    if connection.provider and provider is None:
        violations["body.connection.provider"] = "is not a provider of the catalog"
    elif provider is not None and not provider.oauth2_opts.token_url:
        violations["body.connection.provider"] = "has no OAuth token endpoint in the catalog"
    if not request.code:
        violations["body.code"] = "is required"
    if not request.redirect_uri:
        violations["body.redirect_uri"] = "is required"
    return violations


def auth_scheme(credentials: tm.Credentials) -> events.AuthScheme:
    kind = credentials.WhichOneof("kind")
    if kind == "oauth2_authorization_code":
        return (
            events.AUTH_SCHEME_OAUTH2_AUTHORIZATION_CODE_PKCE
            if credentials.oauth2_authorization_code.pkce
            else events.AUTH_SCHEME_OAUTH2_AUTHORIZATION_CODE
        )
    return {
        "oauth2_client_credentials": events.AUTH_SCHEME_OAUTH2_CLIENT_CREDENTIALS,
        "oauth2_password": events.AUTH_SCHEME_OAUTH2_PASSWORD,
        "api_key": events.AUTH_SCHEME_API_KEY,
        "basic": events.AUTH_SCHEME_BASIC,
        "custom": events.AUTH_SCHEME_CUSTOM,
    }.get(kind or "", events.AUTH_SCHEME_UNSPECIFIED)


def access_token_of(credentials: tm.Credentials) -> tm.OAuth2Token | None:
    """The stored OAuth access token, or None for kinds without one (or none fetched)."""
    kind = credentials.WhichOneof("kind")
    if kind not in OAUTH_KINDS:
        return None
    variant = getattr(credentials, kind)
    return variant.access_token if variant.HasField("access_token") else None


def refresh_token_of(credentials: tm.Credentials) -> tm.OAuth2Token | None:
    kind = credentials.WhichOneof("kind")
    if kind not in ("oauth2_authorization_code", "oauth2_password"):
        return None
    variant = getattr(credentials, kind)
    return variant.refresh_token if variant.HasField("refresh_token") else None


def access_token_expiry(credentials: tm.Credentials) -> datetime | None:
    token = access_token_of(credentials)
    if token is None or not token.HasField("expire_time"):
        return None
    return token.expire_time.ToDatetime(tzinfo=UTC)


def scopes_of(credentials: tm.Credentials) -> list[str]:
    kind = credentials.WhichOneof("kind")
    if kind in OAUTH_KINDS:
        return list(getattr(credentials, kind).scopes)
    return []


def access_token(
    connection_id: str, credentials: tm.Credentials, provider: providers_pb2.ProviderInfo | None
) -> tm.AccessToken:
    """The usable token of stored credentials, and exactly how to attach it."""
    kind = credentials.WhichOneof("kind")
    token = tm.AccessToken(
        connection_id=connection_id,
        auth_scheme=auth_scheme(credentials),
        scopes=scopes_of(credentials),
    )
    if kind in OAUTH_KINDS:
        stored = access_token_of(credentials)
        if stored is not None:
            token.token = stored.token
            if stored.HasField("expire_time"):
                token.expire_time.CopyFrom(stored.expire_time)
        # Only the authorization-code variant records the provider's token type.
        token.token_type = (
            kind == "oauth2_authorization_code" and credentials.oauth2_authorization_code.token_type
        ) or "Bearer"
        if token.token:
            token.attachments.append(_oauth_attachment(token.token, token.token_type, provider))
    elif kind == "api_key":
        token.token = credentials.api_key.key
        token.attachments.append(_api_key_attachment(token.token, provider))
    elif kind == "basic":
        pair = f"{credentials.basic.username}:{credentials.basic.password}"
        token.token = base64.b64encode(pair.encode()).decode()
        token.attachments.append(
            tm.Attachment(location=HEADER, name="Authorization", value=f"Basic {token.token}")
        )
    elif kind == "custom":
        token.attachments.extend(_custom_attachments(credentials.custom, provider))
    return token


def _oauth_attachment(
    value: str, token_type: str, provider: providers_pb2.ProviderInfo | None
) -> tm.Attachment:
    opts = provider.oauth2_opts.access_token_opts if provider is not None else None
    if opts is not None and opts.header.name:
        # A catalog header without a prefix takes the bare token (Shopify's, for one).
        return tm.Attachment(
            location=HEADER, name=opts.header.name, value=_join(opts.header.value_prefix, value)
        )
    return tm.Attachment(location=HEADER, name="Authorization", value=_join(token_type, value))


def _api_key_attachment(key: str, provider: providers_pb2.ProviderInfo | None) -> tm.Attachment:
    opts = provider.api_key_opts if provider is not None else None
    if opts is not None and opts.attachment_type == "query" and opts.query.name:
        return tm.Attachment(location=QUERY, name=opts.query.name, value=key)
    if opts is not None and opts.header.name:
        return tm.Attachment(
            location=HEADER, name=opts.header.name, value=_join(opts.header.value_prefix, key)
        )
    # A provider whose catalog entry says nothing: the most common convention.
    return tm.Attachment(location=HEADER, name="X-Api-Key", value=key)


def _custom_attachments(
    custom: tm.CustomCredentials, provider: providers_pb2.ProviderInfo | None
) -> list[tm.Attachment]:
    if provider is None:
        return []
    values = json_format.MessageToDict(custom.values)

    def render(template: str) -> str:
        return render_template(template, values)

    opts = provider.custom_opts
    return [
        tm.Attachment(location=HEADER, name=h.name, value=render(h.value_template))
        for h in opts.headers
    ] + [
        tm.Attachment(location=QUERY, name=q.name, value=render(q.value_template))
        for q in opts.query_params
    ]


def render_template(template: str, values: Mapping[str, object]) -> str:
    """A catalog template (Go text/template syntax, substitutions only) with its variables
    replaced; an unknown variable renders empty, as Go's templates do for a missing key."""
    return _TEMPLATE_VARIABLE.sub(lambda m: _text(values.get(m.group(1), "")), template)


def _join(prefix: str, value: str) -> str:
    """The catalog writes prefixes both as "Bearer " and "Bearer": one space either way."""
    prefix = prefix.strip()
    return f"{prefix} {value}" if prefix else value


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return str(value)


def _field(message: object, path: str) -> object:
    for name in path.split("."):
        message = getattr(message, name)
    return message
