"""The providers catalog: its data is usable, in sync with its generator, and served over
a real mTLS grpc.aio server as GET /v1/providers and GET /v1/providers/{provider}."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from ampmesh.platform.v1 import providers_pb2, providers_pb2_grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2  # type: ignore[import-untyped, unused-ignore]

from services.api.__main__ import CALLERS, ApiSettings, build_services
from services.domain.catalog import DATA_FILE, CatalogError, load_catalog
from services.runtime.config import load_settings
from services.runtime.errors import status_from_error, unpack_details
from services.runtime.identity import AccessPolicy
from services.runtime.server import MeshServer
from services.runtime.tls import ServiceCredentials, ensure_service_credentials
from tests.support.probe import dial, serving

Catalog = dict[str, providers_pb2.ProviderInfo]

REPOSITORY = Path(__file__).resolve().parents[2]
REFERENCE_CATALOG = REPOSITORY.parent / "shared/reference/ampersand/connectors/catalog.json"
needs_reference = pytest.mark.skipif(
    not REFERENCE_CATALOG.is_file(),
    reason=f"the reference catalog {REFERENCE_CATALOG} is not on this machine",
)

PLACEHOLDER = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
# Every auth kind the reference's catalog uses (it has no jwt or none provider).
AUTH_KINDS = {
    "oauth2/authorizationCode",
    "oauth2/authorizationCodePKCE",
    "oauth2/clientCredentials",
    "oauth2/password",
    "apiKey/header",
    "apiKey/query",
    "basic",
    "custom",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    catalog: dict[str, Any] = json.loads(REFERENCE_CATALOG.read_text(encoding="utf-8"))["catalog"]
    return catalog


def auth_kind(info: providers_pb2.ProviderInfo) -> str:
    if info.auth_type == "oauth2":
        return f"oauth2/{info.oauth2_opts.grant_type}"
    if info.auth_type == "apiKey":
        return f"apiKey/{info.api_key_opts.attachment_type}"
    return info.auth_type


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings(item, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


# --- the data ---------------------------------------------------------------------------


def test_the_best_known_providers_are_served(catalog: Catalog) -> None:
    assert len(catalog) >= 40
    assert {"salesforce", "hubspot", "zendeskSupport", "slack", "stripe"} <= set(catalog)


def test_every_auth_kind_is_served(catalog: Catalog) -> None:
    assert {auth_kind(info) for info in catalog.values()} == AUTH_KINDS


@needs_reference
def test_no_auth_kind_of_the_reference_is_missing(reference: dict[str, Any]) -> None:
    kinds = {
        auth_kind(json_format.ParseDict(entry, providers_pb2.ProviderInfo()))
        for entry in reference.values()
    }
    assert kinds == AUTH_KINDS


def test_each_entry_is_stored_under_its_name(catalog: Catalog) -> None:
    assert [key for key, info in catalog.items() if info.name != key] == []


def test_every_url_is_an_absolute_https_url(catalog: Catalog) -> None:
    checked, bad = 0, []
    for name, info in catalog.items():
        for path, text in strings(json_format.MessageToDict(info)):
            if not (path.endswith("URL") or path.endswith(".url")):
                continue
            checked += 1
            if PLACEHOLDER.match(text):
                # The connection supplies the whole origin (Gong's per-customer API host,
                # a SugarCRM instance): only the rest of the URL is ours.
                rest = PLACEHOLDER.sub("", text, count=1)
                if rest and not rest.startswith("/"):
                    bad.append((name, path, text))
                continue
            parts = urlsplit(PLACEHOLDER.sub("x", text))
            if parts.scheme != "https" or not parts.hostname or text != text.strip():
                bad.append((name, path, text))
    assert bad == []
    # baseURL, tokenURL and media alone make several per provider.
    assert checked > 4 * len(catalog)


def test_every_template_names_a_value_the_connection_supplies(catalog: Catalog) -> None:
    templated, unresolved = set(), []
    for name, info in catalog.items():
        token_fields = info.oauth2_opts.token_metadata_fields
        supplied = {
            *(item.name for item in info.metadata.input),
            *(item.name for item in info.metadata.post_authentication),
            *(item.name for item in info.custom_opts.inputs),
            *(field.name for field in token_fields.other_fields),
            token_fields.workspace_ref_field,
        }
        for path, text in strings(json_format.MessageToDict(info)):
            for variable in PLACEHOLDER.findall(text):
                templated.add(name)
                if variable not in supplied:
                    unresolved.append((name, path, variable))
    assert unresolved == []
    # Templates are common (Salesforce, Zendesk, NetSuite, ...): the check saw them.
    assert {"salesforce", "zendeskSupport", "netsuite", "atlassian", "gitlab"} <= templated


def test_workspace_templates_are_filled_from_a_declared_input(catalog: Catalog) -> None:
    salesforce = catalog["salesforce"]
    [workspace] = [i for i in salesforce.metadata.input if i.name == "workspace"]
    assert workspace.display_name == "Subdomain"
    assert "{{.workspace}}" in salesforce.oauth2_opts.token_url


def test_auth_options_are_complete_for_their_auth_type(catalog: Catalog) -> None:
    incomplete = []
    for name, info in catalog.items():
        kind = auth_kind(info)
        opts = info.oauth2_opts
        if info.auth_type == "oauth2":
            needs_browser = opts.grant_type in ("authorizationCode", "authorizationCodePKCE")
            complete = bool(opts.token_url) and (bool(opts.auth_url) or not needs_browser)
        elif kind == "apiKey/header":
            complete = bool(info.api_key_opts.header.name)
        elif kind == "apiKey/query":
            complete = bool(info.api_key_opts.query.name)
        elif info.auth_type == "basic":
            # Username and password need no options; an API key sent as basic credentials does.
            basic = info.basic_opts
            complete = not basic.api_key_as_basic or "%s" in basic.api_key_as_basic_opts.key_format
        elif info.auth_type == "custom":
            inputs = {i.name for i in info.custom_opts.inputs}
            templates = [h.value_template for h in info.custom_opts.headers]
            templates += [q.value_template for q in info.custom_opts.query_params]
            complete = bool(inputs) and all(
                set(PLACEHOLDER.findall(t)) <= inputs | {i.name for i in info.metadata.input}
                for t in templates
            )
        else:
            complete = False
        if not complete:
            incomplete.append((name, kind))
    assert incomplete == []


def test_rest_json_names_are_the_references(catalog: Catalog) -> None:
    salesforce = json_format.MessageToDict(catalog["salesforce"])
    assert salesforce["baseURL"] == "https://{{.workspace}}.my.salesforce.com"
    assert salesforce["oauth2Opts"]["authURL"].endswith("/services/oauth2/authorize")
    assert salesforce["oauth2Opts"]["authURLParams"] == {"prompt": "login"}
    assert salesforce["oauth2Opts"]["tokenMetadataFields"]["workspaceRefField"] == "instance_url"
    assert salesforce["media"]["regular"]["iconURL"].startswith("https://")
    assert salesforce["modules"]["crm"]["subscribeRequirements"]["subscribeByAPI"] is True
    assert salesforce["metadata"]["input"][0]["docsURL"].startswith("https://")
    stripe = json_format.MessageToDict(catalog["stripe"])
    assert stripe["apiKeyOpts"]["header"] == {"name": "Authorization", "valuePrefix": "Bearer "}


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every scalar and every empty object or list in a JSON document,
    and ("<path>/", "object") for every object, empty or not."""
    if isinstance(value, dict):
        yield f"{path}/", "object"
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
        if not value:
            yield path, {}
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


@needs_reference
def test_our_json_holds_every_value_of_the_references(
    catalog: Catalog, reference: dict[str, Any]
) -> None:
    """What the REST surface prints (the transcoder prints fields without presence too)
    has every field and value the reference's entry has, under the same JSON names."""
    differences, compared = [], 0
    for name, info in catalog.items():
        printed = json_format.MessageToDict(info, always_print_fields_with_no_presence=True)
        ours = dict(_leaves(printed))
        for path, value in _leaves(reference[name]):
            # An empty object of the reference's is an object of ours: where it has fields
            # without presence (tokenMetadataFields.otherFields), they print as [].
            if value == {}:
                path, value = f"{path}/", "object"
            compared += 1
            if ours.get(path, "<absent>") != value:
                differences.append((name, path, value, ours.get(path, "<absent>")))
    assert differences == []
    assert compared > 20 * len(catalog)


# --- the loader refuses what it cannot serve --------------------------------------------


def _salesforce_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    entry = copy.deepcopy(document["catalog"]["salesforce"])
    change(entry)
    return {"catalog": {"salesforce": entry}, "timestamp": document["timestamp"]}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(entry: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            entry = entry[key]
        entry[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("newField", 1), 'no field named "newField"'),
        (
            _set("oauth2Opts.tokenURL", "https://{{.tenant}}.my.salesforce.com/token"),
            "oauth2Opts.tokenURL uses {{.tenant}}, which the connection does not supply",
        ),
        (
            _set("baseURL", "http://{{.workspace}}.my.salesforce.com"),
            "baseURL is not an absolute https URL",
        ),
        (_set("oauth2Opts.authURL", ""), "oauth2Opts.authURL is missing"),
        (_set("authType", "apiKey"), "authType is apiKey but apiKeyOpts is missing"),
        (_set("apiKeyOpts", {"attachmentType": "header"}), "apiKeyOpts is set but authType"),
        (_set("name", "Salesforce"), "name is 'Salesforce', not its catalog key"),
        (_set("defaultModule", "marketing"), "defaultModule 'marketing' is not one of"),
        (_set("media.regular.iconURL", " https://x.example/i.svg"), "contains whitespace"),
    ],
)
def test_the_loader_refuses_an_unusable_entry(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(_salesforce_with(change)), encoding="utf-8")
    with pytest.raises(CatalogError) as refused:
        load_catalog(path)
    message = str(refused.value)
    assert f"{path}: provider 'salesforce': " in message
    assert expected in message
    assert "scripts/build_catalog.py" in message
    assert "\n" not in message


def test_the_loader_accepts_the_entry_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(_salesforce_with(lambda entry: None)), encoding="utf-8")
    assert list(load_catalog(path)) == ["salesforce"]


# --- the generator ----------------------------------------------------------------------


@needs_reference
def test_the_data_file_is_what_the_generator_writes(tmp_path: Path) -> None:
    out = tmp_path / "providers.json"
    subprocess.run(  # noqa: S603 (our own script, our own interpreter)
        [sys.executable, "scripts/build_catalog.py", str(REFERENCE_CATALOG), "--out", str(out)],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == DATA_FILE.read_bytes()


@needs_reference
def test_the_generator_names_a_provider_the_reference_lacks(tmp_path: Path) -> None:
    reference = tmp_path / "catalog.json"
    document = json.loads(REFERENCE_CATALOG.read_text(encoding="utf-8"))
    del document["catalog"]["hubspot"]
    reference.write_text(json.dumps(document), encoding="utf-8")
    out = tmp_path / "providers.json"
    ran = subprocess.run(  # noqa: S603 (our own script, our own interpreter)
        [sys.executable, "scripts/build_catalog.py", str(reference), "--out", str(out)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 1
    assert "not in the reference catalog: hubspot" in ran.stderr
    assert not out.exists()


# --- the service, over a real mTLS server -------------------------------------------------


@pytest.fixture(scope="module")
def creds_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], ServiceCredentials]:
    cert_dir = tmp_path_factory.mktemp("certs")
    return lambda identity: ensure_service_credentials(cert_dir, identity)


@pytest.fixture(scope="module")
async def api_server(
    creds_for: Callable[[str], ServiceCredentials],
) -> AsyncIterator[MeshServer]:
    """The api service's public services, as `python -m services.api` builds them."""
    services = build_services(load_settings(ApiSettings, service_name="api"))
    async with serving(
        creds_for("api"), services, policy=AccessPolicy.allow_only(*CALLERS)
    ) as server:
        yield server


@pytest.fixture
async def providers(
    api_server: MeshServer, creds_for: Callable[[str], ServiceCredentials]
) -> AsyncIterator[providers_pb2_grpc.ProviderServiceStub]:
    # As the edge calls it for an anonymous REST client: no API key, no JWT.
    async with dial(api_server, creds_for("envoy")) as channel:
        yield providers_pb2_grpc.ProviderServiceStub(channel)


async def test_list_providers_returns_the_whole_catalog(
    providers: providers_pb2_grpc.ProviderServiceStub, catalog: Catalog
) -> None:
    listed = await providers.ListProviders(providers_pb2.ListProvidersRequest(), timeout=5)
    assert dict(listed.providers) == catalog


async def test_get_provider_returns_its_entry(
    providers: providers_pb2_grpc.ProviderServiceStub, catalog: Catalog
) -> None:
    got = await providers.GetProvider(
        providers_pb2.GetProviderRequest(provider="salesforce"), timeout=5
    )
    assert got == catalog["salesforce"]
    assert got.oauth2_opts.grant_type == "authorizationCodePKCE"


async def _get_failing(
    providers: providers_pb2_grpc.ProviderServiceStub, name: str
) -> tuple[grpc.aio.AioRpcError, list[Any]]:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await providers.GetProvider(providers_pb2.GetProviderRequest(provider=name), timeout=5)
    status = status_from_error(failed.value)
    assert status is not None
    return failed.value, unpack_details(status)


def _violations(details: list[Any]) -> dict[str, str]:
    [bad_request] = [d for d in details if isinstance(d, error_details_pb2.BadRequest)]
    return {v.field: v.description for v in bad_request.field_violations}


async def test_an_unknown_provider_is_not_found(
    providers: providers_pb2_grpc.ProviderServiceStub,
) -> None:
    error, details = await _get_failing(providers, "nosuchsaas")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "provider 'nosuchsaas' is not in the catalog"
    [resource] = [d for d in details if isinstance(d, error_details_pb2.ResourceInfo)]
    assert (resource.resource_type, resource.resource_name) == ("provider", "nosuchsaas")
    assert _violations(details) == {
        "path.provider": "not in the catalog; GET /v1/providers lists every provider"
    }


async def test_names_are_case_sensitive_and_the_error_says_which_was_meant(
    providers: providers_pb2_grpc.ProviderServiceStub,
) -> None:
    error, details = await _get_failing(providers, "SalesForce")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "provider 'SalesForce' is not in the catalog"
    assert "did you mean 'salesforce'?" in _violations(details)["path.provider"]


async def test_a_missing_provider_name_is_invalid(
    providers: providers_pb2_grpc.ProviderServiceStub,
) -> None:
    error, details = await _get_failing(providers, "")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(details) == {"path.provider": "required"}


def test_the_catalog_is_served_only_with_the_platform_routes() -> None:
    with_platform = build_services(load_settings(ApiSettings, service_name="api"))
    without = build_services(
        load_settings(ApiSettings, service_name="api", enable_platform_routes=False)
    )
    name = "ampmesh.platform.v1.ProviderService"
    assert name in {s.name for s in with_platform}
    assert name not in {s.name for s in without}
