"""A connection's credentials and descriptive fields, between the REST contract and the
token-manager's: which credential a provider's connections take (from the catalog), the
checks of what a client sent (generate, update), and the mapping of a ConnectionInput to
the token-manager's Credentials and ConnectionContext, and of stored credentials back to
what a Connection shows with includeCreds. Pure functions: no database, no calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ampmesh.platform.v1 import connections_pb2, providers_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.protobuf import json_format

from services.api.platform.provider_apps import provider_problem

METADATA_SOURCES = ("input", "token", "provider")

# ConnectionInput credential field -> (its JSON name, the token-manager Credentials kind).
CREDENTIAL_FIELDS: Mapping[str, tuple[str, str]] = {
    "api_key": ("apiKey", "api_key"),
    "basic_auth": ("basicAuth", "basic"),
    "oauth2_client_credentials": ("oauth2ClientCredentials", "oauth2_client_credentials"),
    "oauth2_password_credentials": ("oauth2PasswordCredentials", "oauth2_password"),
    "oauth2_authorization_code": ("oauth2AuthorizationCode", "oauth2_authorization_code"),
    "custom_auth": ("customAuth", "custom"),
}

# Which credential field each catalog auth type (and OAuth2 grant type) takes, and the
# auth scheme the connection then has.
_BY_AUTH_TYPE: Mapping[str, tuple[str, str]] = {
    "apiKey": ("api_key", "apiKey"),
    "basic": ("basic_auth", "basic"),
}
_BY_GRANT_TYPE: Mapping[str, tuple[str, str]] = {
    "clientCredentials": ("oauth2_client_credentials", "oauth2/clientCredentials"),
    "password": ("oauth2_password_credentials", "oauth2/password"),
    "authorizationCode": ("oauth2_authorization_code", "oauth2/authorizationCode"),
    "authorizationCodePKCE": ("oauth2_authorization_code", "oauth2/authorizationCodePKCE"),
}

# UpdateConnection's mask paths: the two that describe the connection, and the credential
# paths, each with the ConnectionInput field carrying it and the auth scheme it rotates.
_DESCRIPTIVE_PATHS = ("providerWorkspaceRef", "providerMetadata")
CREDENTIAL_PATHS: Mapping[str, tuple[str, str]] = {
    "apiKey": ("api_key", "apiKey"),
    "basicAuth": ("basic_auth", "basic"),
    "oauth2ClientCredentials": ("oauth2_client_credentials", "oauth2/clientCredentials"),
    "oauth2PasswordCredentials": ("oauth2_password_credentials", "oauth2/password"),
}
UPDATABLE = (*_DESCRIPTIVE_PATHS, *CREDENTIAL_PATHS)
# Schemes whose token the token-manager fetches itself: a rotation checks the new
# credentials at the provider at once.
FETCHED_TOKEN_SCHEMES = ("oauth2/clientCredentials", "oauth2/password")
AUTHORIZATION_CODE_SCHEMES = ("oauth2/authorizationCode", "oauth2/authorizationCodePKCE")


def expected_credential(info: providers_pb2.ProviderInfo) -> tuple[str, str] | None:
    """(ConnectionInput credential field, auth scheme) a provider's connections take, or
    None when generate cannot make one (custom auth has its own flow)."""
    if info.auth_type == "oauth2":
        return _BY_GRANT_TYPE.get(info.oauth2_opts.grant_type)
    return _BY_AUTH_TYPE.get(info.auth_type)


def _missing(values: Mapping[str, str], at: str) -> dict[str, str]:
    return {f"{at}.{name}": "is required" for name, value in values.items() if not value.strip()}


def credential_problems(connection: connections_pb2.ConnectionInput) -> dict[str, str]:
    """The required fields of the credential the input carries, named as the client sent
    them (body.<jsonName>...)."""
    kind = connection.WhichOneof("credentials")
    if kind == "api_key":
        return {"body.apiKey": "must not be empty"} if not connection.api_key.strip() else {}
    if kind == "basic_auth":
        basic = connection.basic_auth
        return _missing({"username": basic.username, "password": basic.password}, "body.basicAuth")
    if kind == "oauth2_client_credentials":
        client = connection.oauth2_client_credentials
        return _missing(
            {"clientId": client.client_id, "clientSecret": client.client_secret},
            "body.oauth2ClientCredentials",
        )
    if kind == "oauth2_password_credentials":
        grant = connection.oauth2_password_credentials
        return _missing(
            {
                "username": grant.username,
                "password": grant.password,
                "clientId": grant.client_id,
                "clientSecret": grant.client_secret,
            },
            "body.oauth2PasswordCredentials",
        )
    if kind == "oauth2_authorization_code":
        tokens = connection.oauth2_authorization_code
        return _missing(
            {"token": tokens.access_token.token}, "body.oauth2AuthorizationCode.accessToken"
        )
    return {}


def metadata_problems(
    metadata: Mapping[str, connections_pb2.ProviderMetadataInfo], at: str
) -> dict[str, str]:
    problems: dict[str, str] = {}
    for name, value in metadata.items():
        if not value.value:
            problems[f"{at}.{name}.value"] = "is required"
        if value.source not in METADATA_SOURCES:
            problems[f"{at}.{name}.source"] = f"must be one of {', '.join(METADATA_SOURCES)}"
    return problems


def generate_problems(
    connection: connections_pb2.ConnectionInput,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not connection.group_ref.strip():
        problems["body.groupRef"] = "is required: your identifier of the customer organisation"
    if not connection.consumer_ref.strip():
        problems["body.consumerRef"] = "is required: your identifier of the end user"
    problems.update(metadata_problems(connection.provider_metadata, "body.providerMetadata"))
    # Any catalog provider may be named here; provider_problem's OAuth2-only rule is for
    # provider apps, so only its "not in the catalog" answer applies.
    info = catalog.get(connection.provider)
    if info is None:
        problems["body.provider"] = provider_problem(connection.provider, catalog) or (
            f"{connection.provider!r} is not a provider of the catalog"
        )
        return problems
    given = connection.WhichOneof("credentials")
    expected = expected_credential(info)
    if expected is None:
        problems["body.provider"] = (
            f"{connection.provider!r} uses {info.auth_type} auth, which generate does not "
            "accept: connect it through its own flow"
        )
    elif given is None:
        problems[f"body.{CREDENTIAL_FIELDS[expected[0]][0]}"] = (
            f"is required: {connection.provider!r} authenticates with {expected[1]}"
        )
    elif given != expected[0]:
        problems[f"body.{CREDENTIAL_FIELDS[given][0]}"] = (
            f"{connection.provider!r} authenticates with {expected[1]}: send "
            f"{CREDENTIAL_FIELDS[expected[0]][0]} instead"
        )
    else:
        problems.update(credential_problems(connection))
    return problems


def update_problems(
    auth_scheme: str, paths: tuple[str, ...], given: connections_pb2.ConnectionInput
) -> dict[str, str]:
    """What is wrong with an update of a connection authenticating with auth_scheme
    along the mask paths (named body.connection.<jsonName>...)."""
    problems: dict[str, str] = {}
    at = "body.connection."
    rotated = [p for p in paths if p in CREDENTIAL_PATHS]
    if len(rotated) > 1:
        problems["body.updateMask"] = (
            f"names {', '.join(rotated)}: a connection has one credential, name one path"
        )
    for path in rotated:
        field, scheme = CREDENTIAL_PATHS[path]
        if auth_scheme != scheme:
            problems[f"{at}{path}"] = (
                f"the connection authenticates with {auth_scheme}, not {scheme}"
                + (
                    ": reconnect it with oauth-update instead"
                    if auth_scheme in AUTHORIZATION_CODE_SCHEMES
                    else ""
                )
            )
        elif given.WhichOneof("credentials") != field:
            problems[f"{at}{path}"] = "is required by the update mask"
        else:
            problems.update(
                {
                    at + name.removeprefix("body."): why
                    for name, why in credential_problems(given).items()
                }
            )
    if "providerWorkspaceRef" in paths and not given.provider_workspace_ref.strip():
        problems[f"{at}providerWorkspaceRef"] = "is required by the update mask"
    if "providerMetadata" in paths:
        if not given.provider_metadata:
            problems[f"{at}providerMetadata"] = "is required by the update mask"
        problems.update(metadata_problems(given.provider_metadata, f"{at}providerMetadata"))
    return problems


def _token(given: connections_pb2.Oauth2Token) -> tm.OAuth2Token:
    token = tm.OAuth2Token(token=given.token)
    if given.HasField("issued_at"):
        token.issue_time.CopyFrom(given.issued_at)
    if given.HasField("expires_at"):
        token.expire_time.CopyFrom(given.expires_at)
    return token


def to_credentials(connection: connections_pb2.ConnectionInput, auth_scheme: str) -> tm.Credentials:
    """The token-manager's Credentials for a validated ConnectionInput."""
    kind = connection.WhichOneof("credentials")
    if kind == "api_key":
        return tm.Credentials(api_key=tm.ApiKeyCredentials(key=connection.api_key))
    if kind == "basic_auth":
        basic = connection.basic_auth
        return tm.Credentials(
            basic=tm.BasicCredentials(username=basic.username, password=basic.password)
        )
    if kind == "oauth2_client_credentials":
        client = connection.oauth2_client_credentials
        return tm.Credentials(
            oauth2_client_credentials=tm.OAuth2ClientCredentials(
                client_id=client.client_id,
                client_secret=client.client_secret,
                scopes=client.scopes,
            )
        )
    if kind == "oauth2_password_credentials":
        grant = connection.oauth2_password_credentials
        return tm.Credentials(
            oauth2_password=tm.OAuth2PasswordCredentials(
                username=grant.username,
                password=grant.password,
                client_id=grant.client_id,
                client_secret=grant.client_secret,
                scopes=grant.scopes,
            )
        )
    if kind == "oauth2_authorization_code":
        tokens = connection.oauth2_authorization_code
        code = tm.OAuth2AuthorizationCodeCredentials(
            access_token=_token(tokens.access_token),
            scopes=tokens.scopes,
            pkce=auth_scheme == "oauth2/authorizationCodePKCE",
        )
        if tokens.refresh_token.token:
            code.refresh_token.CopyFrom(_token(tokens.refresh_token))
        return tm.Credentials(oauth2_authorization_code=code)
    raise ValueError(f"no credentials for {kind!r}")  # validated before


def provider_metadata_json(metadata: Mapping[str, connections_pb2.ProviderMetadataInfo]) -> str:
    return json.dumps({name: json_format.MessageToDict(info) for name, info in metadata.items()})


def add_credentials(
    connection: connections_pb2.Connection, credentials: tm.Credentials, *, refresh_token: bool
) -> None:
    """The credentials the reference shows with includeCreds: an API key, or the OAuth
    access token and scopes (and the refresh token only when asked for). Other schemes
    have no place for theirs in a Connection."""
    kind = credentials.WhichOneof("kind")
    if kind == "api_key":
        connection.api_key = credentials.api_key.key
    elif kind == "oauth2_authorization_code":
        stored = credentials.oauth2_authorization_code
        shown = connection.oauth2_authorization_code
        shown.scopes.extend(stored.scopes)
        _show_token(stored.access_token, shown.access_token)
        if refresh_token and stored.refresh_token.token:
            _show_token(stored.refresh_token, shown.refresh_token)


def _show_token(stored: tm.OAuth2Token, shown: connections_pb2.Oauth2Token) -> None:
    shown.token = stored.token
    if stored.HasField("issue_time"):
        shown.issued_at.CopyFrom(stored.issue_time)
    if stored.HasField("expire_time"):
        shown.expires_at.CopyFrom(stored.expire_time)


def connection_context(
    project_id: str,
    connection_id: str,
    row: Mapping[str, Any],
    workspace: str | None,
    metadata: Mapping[str, Any],
) -> tm.ConnectionContext:
    """What the token-manager records with a connection's credentials; row holds the
    provider, the app and the group and consumer (a connections or oauth_states row)."""
    return tm.ConnectionContext(
        project_id=project_id,
        connection_id=connection_id,
        provider=row["provider"],
        provider_app_id=str(row["provider_app_id"] or ""),
        provider_workspace_ref=workspace or "",
        provider_metadata={name: str(info.get("value", "")) for name, info in metadata.items()},
        group_ref=row["group_ref"],
        group_name=row["group_name"],
        consumer_ref=row["consumer_ref"],
        consumer_name=row["consumer_name"],
    )
