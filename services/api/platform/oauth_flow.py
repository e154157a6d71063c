"""The OAuth authorization-code flow's api side: pending flows (oauth_states), the
authorization URL, what the token response says about the connection, and the page the
callback answers with.

A flow starts when oauth-connect or oauth-update hands out an authorization URL and ends
when the provider sends the browser back to the callback. Between the two, one
oauth_states row holds everything the callback needs (project, provider app, group,
consumer, workspace, redirect URI, scopes, the sealed PKCE verifier). The state in the URL
is a random 256-bit value; only its SHA-256 is stored, so reading the database does not
let anyone complete someone else's flow. A state is used at most once and only before it
expires: consuming it is one UPDATE ... RETURNING, so two callbacks racing with the same
state cannot both win.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from ampmesh.platform.v1 import providers_pb2

from services.api.platform.connection_metadata import url_templates
from services.domain.catalog.checks import BROWSER_GRANTS, PLACEHOLDER, placeholders
from services.runtime.secretbox import Sealed, SecretBox

WORKSPACE = "workspace"
STATE_EXPIRED = "this authorization link has expired or was already used; start connecting again"
SUCCEEDED = "AUTHORIZATION_SUCCEEDED"
FAILED = "AUTHORIZATION_FAILED"


# --- PKCE and states --------------------------------------------------------------------


def new_state() -> str:
    return secrets.token_urlsafe(32)


def state_digest(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


def pkce_pair() -> tuple[str, str]:
    """(code verifier, S256 code challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def uses_pkce(info: providers_pb2.ProviderInfo) -> bool:
    return info.oauth2_opts.grant_type == "authorizationCodePKCE"


def is_browser_oauth(info: providers_pb2.ProviderInfo) -> bool:
    """Whether connections to the provider are made by sending the user to authorize."""
    return info.auth_type == "oauth2" and info.oauth2_opts.grant_type in BROWSER_GRANTS


def auth_scheme(info: providers_pb2.ProviderInfo) -> str:
    return "oauth2/authorizationCodePKCE" if uses_pkce(info) else "oauth2/authorizationCode"


def _verifier_associated(digest: bytes) -> bytes:
    # Bound to its row: a sealed verifier copied to another state does not open.
    return f"oauth_states:{digest.hex()}:code_verifier".encode()


# --- templates and the authorization URL ------------------------------------------------


def template_values(workspace: str | None, metadata: Mapping[str, str]) -> dict[str, str]:
    """The values catalog templates ({{.name}}) take from a connection: its metadata by
    name, and its workspace."""
    values = {name: value for name, value in metadata.items() if value}
    if workspace:
        values[WORKSPACE] = workspace
    return values


def render(template: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def _templates(info: providers_pb2.ProviderInfo, scopes: Iterable[str]) -> list[str]:
    opts = info.oauth2_opts
    mapped = [opts.scope_mappings[s] for s in scopes if s in opts.scope_mappings]
    return [opts.auth_url, *opts.auth_url_params.values(), *mapped]


def missing_values(
    info: providers_pb2.ProviderInfo, values: Mapping[str, str], scopes: Iterable[str]
) -> list[str]:
    """Names the authorization URL needs that values lacks, in order of first use; the
    workspace first when the catalog says it must be known before the flow."""
    needed: list[str] = []
    if info.oauth2_opts.explicit_workspace_required:
        needed.append(WORKSPACE)
    for template in _templates(info, scopes):
        needed += placeholders(template)
    missing: list[str] = []
    for name in needed:
        if name not in values and name not in missing:
            missing.append(name)
    return missing


def mapped_scopes(
    info: providers_pb2.ProviderInfo, scopes: Iterable[str], values: Mapping[str, str]
) -> list[str]:
    """The scopes as the provider names them (catalog scopeMappings, templates filled)."""
    mappings = info.oauth2_opts.scope_mappings
    return [render(mappings[s], values) if s in mappings else s for s in scopes]


def authorization_url(
    info: providers_pb2.ProviderInfo,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    values: Mapping[str, str],
    code_challenge: str | None = None,
    extra_params: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The catalog's authorization URL with the RFC 6749 section 4.1.1 parameters (and
    RFC 7636's when code_challenge is given). The catalog's authURLParams and the provider
    app's authQueryParams (extra_params: each a list, sent space-joined) come first; the
    protocol's own parameters win over any of them with the same name."""
    opts = info.oauth2_opts
    parts = urlsplit(render(opts.auth_url, values))
    query: dict[str, str] = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({name: render(value, values) for name, value in opts.auth_url_params.items()})
    for name, listed in (extra_params or {}).items():
        query[name] = " ".join(listed)
    query.update(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    if scopes:
        query["scope"] = " ".join(mapped_scopes(info, scopes, values))
    if code_challenge is not None:
        query["code_challenge"] = code_challenge
        query["code_challenge_method"] = "S256"
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- what the token response says about the connection ----------------------------------


def _lookup(document: Any, path: str) -> Any:
    for step in path.split("."):
        if not isinstance(document, Mapping) or step not in document:
            return None
        document = document[step]
    return document


def _workspace_from_url(info: providers_pb2.ProviderInfo, value: str) -> str | None:
    """The workspace in a URL the provider gave (Salesforce's instance_url), found where
    the provider's URL templates put {{.workspace}} in their host (connection_metadata:
    the reference catalog's too, which a sandboxed entry no longer shows)."""
    host = urlsplit(value).hostname or ""
    for template in url_templates(info):
        template_host = urlsplit(PLACEHOLDER.sub("WORKSPACE", template)).hostname or ""
        if "workspace" not in template_host.lower():
            continue
        pattern = re.escape(template_host.lower()).replace("workspace", "([a-z0-9-]+)", 1)
        matched = re.fullmatch(pattern, host.lower())
        if matched:
            return matched.group(1)
    return None


@dataclass(frozen=True)
class TokenFacts:
    """What the api keeps from a token response: the workspace, and metadata values."""

    workspace: str | None = None
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)


def token_facts(info: providers_pb2.ProviderInfo, response: Mapping[str, Any]) -> TokenFacts:
    """The catalog's tokenMetadataFields read from the provider's token response (tokens
    removed). A workspace given as a URL is reduced to the part the catalog's templates
    take; one that does not fit them (a sandbox's loopback URL) is not kept."""
    fields = info.oauth2_opts.token_metadata_fields
    workspace: str | None = None
    if fields.workspace_ref_field:
        value = _lookup(response, fields.workspace_ref_field)
        if isinstance(value, str) and value:
            workspace = _workspace_from_url(info, value) if "://" in value else value
    metadata: dict[str, dict[str, str]] = {}
    for other in fields.other_fields:
        value = _lookup(response, other.path)
        if value is None or isinstance(value, Mapping | list):
            continue
        text = str(value)
        if other.capture:
            captured = re.search(other.capture, text)
            if captured is None or "result" not in captured.groupdict():
                continue
            text = captured.group("result")
        metadata[other.name] = {"value": text, "source": "token"}
        if other.display_name:
            metadata[other.name]["displayName"] = other.display_name
    return TokenFacts(workspace, metadata)


# --- pending flows ----------------------------------------------------------------------


@dataclass(frozen=True)
class PendingFlow:
    """Everything the callback needs, bound to one state."""

    project_id: str
    provider: str
    provider_app_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    provider_workspace_ref: str | None
    # name -> ProviderMetadataInfo in its JSON mapping.
    provider_metadata: dict[str, Any]
    redirect_uri: str
    scopes: list[str]
    # oauth-update: the connection whose credentials the flow replaces.
    connection_id: str | None = None
    code_verifier: str | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record, code_verifier: str | None) -> PendingFlow:
        metadata = row["provider_metadata"]
        return cls(
            project_id=str(row["project_id"]),
            provider=row["provider"],
            provider_app_id=str(row["provider_app_id"]),
            group_ref=row["group_ref"],
            group_name=row["group_name"],
            consumer_ref=row["consumer_ref"],
            consumer_name=row["consumer_name"],
            provider_workspace_ref=row["provider_workspace_ref"],
            provider_metadata=json.loads(metadata) if isinstance(metadata, str) else metadata,
            redirect_uri=row["redirect_uri"],
            scopes=list(row["scopes"]),
            connection_id=str(row["connection_id"]) if row["connection_id"] else None,
            code_verifier=code_verifier,
        )

    def metadata_values(self) -> dict[str, str]:
        return {name: str(info.get("value", "")) for name, info in self.provider_metadata.items()}


async def save_flow(
    pool: asyncpg.Pool, box: SecretBox, flow: PendingFlow, state: str, lifetime_seconds: int
) -> None:
    """Records flow under state's digest (and its PKCE verifier, sealed)."""
    digest = state_digest(state)
    # Flows nobody finished would pile up; each new flow sweeps those long expired.
    await pool.execute("DELETE FROM oauth_states WHERE expires_at < now() - interval '1 hour'")
    sealed: Sealed | None = None
    if flow.code_verifier is not None:
        sealed = box.seal(flow.code_verifier.encode(), _verifier_associated(digest))
    await pool.execute(
        "INSERT INTO oauth_states (state_sha256, project_id, provider, provider_app_id, "
        "group_ref, group_name, consumer_ref, consumer_name, provider_workspace_ref, "
        "provider_metadata, connection_id, redirect_uri, scopes, code_verifier_sealed, "
        "code_verifier_key_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10::jsonb, $11, $12, $13, $14, $15, now() + make_interval(secs => $16))",
        digest,
        uuid.UUID(flow.project_id),
        flow.provider,
        uuid.UUID(flow.provider_app_id),
        flow.group_ref,
        flow.group_name,
        flow.consumer_ref,
        flow.consumer_name,
        flow.provider_workspace_ref,
        json.dumps(flow.provider_metadata),
        uuid.UUID(flow.connection_id) if flow.connection_id else None,
        flow.redirect_uri,
        flow.scopes,
        sealed.data if sealed else None,
        sealed.key_id if sealed else None,
        float(lifetime_seconds),
    )


async def consume_flow(pool: asyncpg.Pool, box: SecretBox, state: str) -> PendingFlow | None:
    """The flow state names, marked used; None when it is unknown, used or expired."""
    if not state:
        return None
    digest = state_digest(state)
    row = await pool.fetchrow(
        "UPDATE oauth_states SET used_at = now() WHERE state_sha256 = $1 "
        "AND used_at IS NULL AND expires_at > now() RETURNING *",
        digest,
    )
    if row is None:
        return None
    verifier = None
    if row["code_verifier_sealed"] is not None:
        sealed = Sealed(row["code_verifier_key_id"], bytes(row["code_verifier_sealed"]))
        verifier = box.open(sealed, _verifier_associated(digest)).decode()
    return PendingFlow.from_row(row, verifier)


# --- the page the callback answers with -------------------------------------------------


def script_literal(value: Any) -> str:
    """value as a JavaScript literal that is safe inside an HTML <script> element: JSON
    (ASCII only, so U+2028/U+2029 are escaped too) with <, > and & as \\u escapes, so no
    value can close the element or open a comment."""
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
</head>
<body>
<h1>{title}</h1>
<p>{text}</p>
<script>
(function () {{
  var message = {message};
  if (window.opener) {{
    window.opener.postMessage(message, "*");
    window.close();
  }}
}})();
</script>
</body>
</html>
"""


def result_page(*, connection_id: str | None = None, error: str | None = None) -> bytes:
    """The callback's page: it tells the window that opened the flow the outcome
    (postMessage, as the reference's connect UI expects) and closes, and says it in
    words for a browser that has no opener. It never holds a code, token or state."""
    if error is None:
        title = "Connected"
        text = "The account is connected. You can close this window."
        message: dict[str, Any] = {"eventType": SUCCEEDED, "data": {"connection": connection_id}}
    else:
        title = "Connection failed"
        text = f"The account could not be connected: {error}."
        message = {"eventType": FAILED, "data": {"error": error}}
    page = _PAGE.format(
        title=html.escape(title), text=html.escape(text), message=script_literal(message)
    )
    return page.encode()
