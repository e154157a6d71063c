"""What makes a catalog entry usable: checked by the generator and again at start.

An entry that parses is not yet one a connection can use. Its URLs must be absolute https
URLs once their template variables are filled in; every variable must name a value the
connection supplies (a metadata input the user types, a value fetched after
authorization, a field of the token response, a custom-auth input); and the options of
its auth type must say everything the token exchange or the request signing needs.

    problems = entry_problems("salesforce", info)   # [] when the entry is usable
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ampmesh.platform.v1 import providers_pb2
from google.protobuf import json_format

AUTH_TYPES = frozenset({"oauth2", "apiKey", "basic", "jwt", "custom", "none"})
GRANT_TYPES = frozenset(
    {"authorizationCode", "authorizationCodePKCE", "clientCredentials", "password"}
)
# Grants that send the user to the provider, and so need its authorization endpoint.
BROWSER_GRANTS = frozenset({"authorizationCode", "authorizationCodePKCE"})
API_KEY_ATTACHMENTS = frozenset({"header", "query"})
INPUT_FIELD_TYPES = frozenset({"fieldTypeText", "fieldTypePassword", "fieldTypeSelect"})

# The only template form the reference's catalog uses: Go's {{.name}} / {{ .name }}.
PLACEHOLDER = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")

# A URL that starts with a variable takes its scheme and host from the connection (Gong's
# per-customer API base, a SugarCRM instance URL): whoever stores that value must check it
# is an https origin. Here it stands in as one, so the rest of the URL is still checked.
_SUPPLIED_ORIGIN = "https://connection-supplied.example"
_SUPPLIED_PART = "supplied"


def placeholders(text: str) -> list[str]:
    """The variable names a template string uses, in order."""
    return PLACEHOLDER.findall(text)


def supplied_values(info: providers_pb2.ProviderInfo) -> set[str]:
    """Names of the values a connection to this provider supplies to its templates."""
    names = {item.name for item in info.metadata.input}
    names |= {item.name for item in info.metadata.post_authentication}
    names |= {item.name for item in info.custom_opts.inputs}
    names |= {item.name for item in info.custom_opts.provider_inputs}
    token_fields = info.oauth2_opts.token_metadata_fields
    names |= {field.name for field in token_fields.other_fields}
    if token_fields.workspace_ref_field:
        # The token response field the connection keeps as its workspace reference.
        names.add(token_fields.workspace_ref_field)
    return names


def render_sample(template: str) -> str:
    """template with every variable replaced by a stand-in value, to check its shape."""
    rendered = PLACEHOLDER.sub(_SUPPLIED_PART, template)
    if PLACEHOLDER.match(template):
        rendered = _SUPPLIED_ORIGIN + rendered[len(_SUPPLIED_PART) :]
    return rendered


def url_problem(url: str) -> str | None:
    """Why url (a template) is not an absolute https URL, or None."""
    if any(c.isspace() for c in url):
        return "contains whitespace"
    parts = urlsplit(render_sample(url))
    if parts.scheme != "https":
        return "is not an absolute https URL"
    if not parts.hostname or not _HOSTNAME.fullmatch(parts.hostname):
        return "has no valid host name"
    return None


def entry_problems(key: str, info: providers_pb2.ProviderInfo) -> list[str]:
    """Every reason the entry stored under key is unusable; [] when it is usable."""
    problems: list[str] = []
    if info.name != key:
        problems.append(f"name is {info.name!r}, not its catalog key")
    if info.auth_type not in AUTH_TYPES:
        problems.append(f"authType {info.auth_type!r} is not one of {sorted(AUTH_TYPES)}")
    if not info.base_url:
        problems.append("baseURL is missing")
    if not info.HasField("support"):
        problems.append("support is missing")
    problems += _auth_problems(info)
    problems += _module_problems(info)
    problems += _string_problems(info)
    return problems


# The options field each auth type reads; basic reads its (optional) options only when the
# provider takes an API key as basic credentials.
_OPTIONS = {
    "oauth2": "oauth2_opts",
    "apiKey": "api_key_opts",
    "basic": "basic_opts",
    "custom": "custom_opts",
}
_OPTIONS_REQUIRED = frozenset({"oauth2", "apiKey", "custom"})


def _auth_problems(info: providers_pb2.ProviderInfo) -> list[str]:
    problems = [
        f"{_json_name(info, field)} is set but authType is {info.auth_type}"
        for auth_type, field in _OPTIONS.items()
        if info.auth_type != auth_type and info.HasField(field)
    ]
    if info.auth_type in _OPTIONS_REQUIRED and not info.HasField(_OPTIONS[info.auth_type]):
        field = _json_name(info, _OPTIONS[info.auth_type])
        return [*problems, f"authType is {info.auth_type} but {field} is missing"]
    if info.auth_type == "oauth2":
        problems += _oauth2_problems(info.oauth2_opts)
    elif info.auth_type == "apiKey":
        problems += _api_key_problems(info.api_key_opts)
    elif info.auth_type == "basic":
        problems += _basic_problems(info.basic_opts)
    elif info.auth_type == "custom":
        problems += _custom_problems(info.custom_opts)
    return problems


def _oauth2_problems(opts: providers_pb2.Oauth2Opts) -> list[str]:
    problems: list[str] = []
    if opts.grant_type not in GRANT_TYPES:
        problems.append(
            f"oauth2Opts.grantType {opts.grant_type!r} is not one of {sorted(GRANT_TYPES)}"
        )
    if not opts.token_url:
        problems.append("oauth2Opts.tokenURL is missing")
    if opts.grant_type in BROWSER_GRANTS and not opts.auth_url:
        problems.append(f"oauth2Opts.authURL is missing, and the {opts.grant_type} grant needs it")
    if opts.HasField("access_token_opts"):
        token = opts.access_token_opts
        if token.attachment_type != "accessTokenHeaderAttachment":
            problems.append(
                f"oauth2Opts.accessTokenOpts.attachmentType {token.attachment_type!r} "
                "is not accessTokenHeaderAttachment"
            )
        if not token.header.name:
            problems.append("oauth2Opts.accessTokenOpts.header.name is missing")
    return problems


def _api_key_problems(opts: providers_pb2.ApiKeyOpts) -> list[str]:
    if opts.attachment_type not in API_KEY_ATTACHMENTS:
        return [
            f"apiKeyOpts.attachmentType {opts.attachment_type!r} is not one of "
            f"{sorted(API_KEY_ATTACHMENTS)}"
        ]
    if opts.attachment_type == "header" and not opts.header.name:
        return ["apiKeyOpts.header.name is missing, and the key travels in a header"]
    if opts.attachment_type == "query" and not opts.query.name:
        return ["apiKeyOpts.query.name is missing, and the key travels in the query"]
    return []


def _basic_problems(opts: providers_pb2.BasicAuthOpts) -> list[str]:
    if not opts.api_key_as_basic:
        return []
    as_basic = opts.api_key_as_basic_opts
    problems: list[str] = []
    if as_basic.HasField("field_used") and as_basic.field_used not in ("username", "password"):
        problems.append(
            f"basicOpts.apiKeyAsBasicOpts.fieldUsed {as_basic.field_used!r} is not "
            "username or password"
        )
    if as_basic.HasField("key_format") and "%s" not in as_basic.key_format:
        problems.append("basicOpts.apiKeyAsBasicOpts.keyFormat has no %s for the key")
    return problems


def _custom_problems(opts: providers_pb2.CustomAuthOpts) -> list[str]:
    problems: list[str] = []
    if not opts.inputs and not opts.multi_step:
        problems.append("customOpts has no inputs and is not multi-step: nothing to connect with")
    for kind, inputs in (("inputs", opts.inputs), ("providerInputs", opts.provider_inputs)):
        for i, item in enumerate(inputs):
            where = f"customOpts.{kind}[{i}]"
            if not item.name or not item.display_name:
                problems.append(f"{where} needs a name and a displayName")
            if item.HasField("field_type") and item.field_type not in INPUT_FIELD_TYPES:
                problems.append(f"{where}.fieldType {item.field_type!r} is not known")
            if item.field_type == "fieldTypeSelect" and not item.options:
                problems.append(f"{where} is a select without options")
    templated: list[tuple[str, providers_pb2.CustomAuthHeader | providers_pb2.CustomAuthQueryParam]]
    templated = [(f"headers[{i}]", header) for i, header in enumerate(opts.headers)]
    templated += [(f"queryParams[{i}]", param) for i, param in enumerate(opts.query_params)]
    for where, param in templated:
        if not param.name or not param.value_template:
            problems.append(f"customOpts.{where} needs a name and a valueTemplate")
    return problems


def _module_problems(info: providers_pb2.ProviderInfo) -> list[str]:
    problems: list[str] = []
    if info.default_module and info.modules and info.default_module not in info.modules:
        problems.append(f"defaultModule {info.default_module!r} is not one of its modules")
    for module_id, module in info.modules.items():
        if not module.base_url:
            problems.append(f"modules.{module_id}.baseURL is missing")
    if info.modules:
        dependent: list[
            providers_pb2.MetadataItemInput | providers_pb2.MetadataItemPostAuthentication
        ]
        dependent = [
            *info.metadata.input,
            *info.metadata.post_authentication,
            *info.provider_app_metadata.auth_query_params,
            *info.provider_app_metadata.provider_params,
        ]
        for item in dependent:
            unknown = sorted(set(item.module_dependencies) - set(info.modules))
            if unknown:
                problems.append(f"metadata {item.name!r} depends on unknown modules {unknown}")
    return problems


def _string_problems(info: providers_pb2.ProviderInfo) -> list[str]:
    """Templates that name nothing the connection supplies, and malformed URLs."""
    supplied = supplied_values(info)
    problems: list[str] = []
    for path, key, text in _strings(json_format.MessageToDict(info)):
        unknown = sorted(set(placeholders(text)) - supplied)
        if unknown:
            problems.append(
                f"{path} uses {', '.join('{{.' + n + '}}' for n in unknown)}, which the "
                "connection does not supply (declare it in metadata.input)"
            )
        if "{{" in PLACEHOLDER.sub("", text) or "}}" in PLACEHOLDER.sub("", text):
            problems.append(f"{path} has a template other than {{{{.name}}}}")
        if key.endswith("URL") or key == "url":
            reason = url_problem(text)
            if reason:
                problems.append(f"{path} {reason}: {text!r}")
    return problems


def _strings(value: Any, path: str = "", key: str = "") -> Iterator[tuple[str, str, str]]:
    """(path, key, text) of every string in a JSON document."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _strings(item, f"{path}.{name}" if path else name, name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]", key)
    elif isinstance(value, str):
        yield path, key, value


def _json_name(info: providers_pb2.ProviderInfo, field: str) -> str:
    return str(info.DESCRIPTOR.fields_by_name[field].json_name)
