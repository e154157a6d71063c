"""What the fuzz suite aims its requests at: two projects, A and B, each with real resources
(a provider app, a destination, a topic, a JWT key, an integration, a connection, an
installation), and a project-scoped key of A's.

Every request goes out with A's key. A path parameter is sometimes one of A's resources (so
requests reach the code behind the 404), sometimes one of B's (A's key must never get a 2xx
on those), sometimes what schemathesis generated. The fuzz deletes and renames what A's key
may touch, so `ensure()` puts A's resources back between operations.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.support.control_plane import new_rsa_key, spki_pem

# A webhook URL the local mesh accepts (loopback http) and nothing listens on.
HOOK = "http://127.0.0.1:9/ampmesh-fuzz-hook"
PROVIDER = "hubspot"
GROUP = "fuzz-group"
OBJECT = "companies"


def _manifest(integration: str, destination: str) -> str:
    return (
        "specVersion: 1.0.0\n"
        "integrations:\n"
        f"  - name: {integration}\n"
        f"    provider: {PROVIDER}\n"
        "    read:\n"
        "      objects:\n"
        f"        - objectName: {OBJECT}\n"
        f"          destination: {destination}\n"
    )


class SeedError(RuntimeError):
    """The mesh refused to make a resource the fuzz needs (itself a finding)."""


@dataclass
class Project:
    """One project and what was made in it; `refs` maps a path parameter's name to the
    values that name this project's resources."""

    id: str
    name: str
    refs: dict[str, list[str]] = field(default_factory=dict)

    def values(self) -> set[str]:
        return {self.id, self.name} | {v for vs in self.refs.values() for v in vs}


class World:
    def __init__(self, api: str, admin_key: str, org_id: str) -> None:
        self.api = api
        self.org_id = org_id
        self.http = requests.Session()
        self.http.headers["X-Api-Key"] = admin_key
        self.a = self._project("fuzz-a")
        self.b = self._project("fuzz-b")
        self.key_a = self._key(self.a)
        # B has a key too, so that A's key may be aimed at it. A's own key is never a
        # target: deleting or narrowing it would end the run's access, not test anything.
        self.b.refs["apiKey"] = [self._key_id(self._key(self.b))]
        self.ensure()
        self._fill(self.b)

    # -- what the fuzz draws from ---------------------------------------------------------

    def pools(self, parameter: str) -> tuple[list[str], list[str]]:
        """(A's values, B's values) for a path parameter named parameter."""
        if parameter in ("projectIdOrName", "projectId"):
            return [self.a.id, self.a.name], [self.b.id, self.b.name]
        if parameter == "orgId":
            return [self.org_id], []
        return self.a.refs.get(parameter, []), self.b.refs.get(parameter, [])

    def is_b(self, value: object) -> bool:
        """Does value name one of B's resources (not something A has too, like a provider)?"""
        return isinstance(value, str) and value in self.b.values() - self.a.values()

    # -- keeping A whole ------------------------------------------------------------------

    def ensure(self) -> None:
        """Remake what the fuzz deleted of A's, and follow a rename of A."""
        self.a.name = self._get(f"/v1/projects/{self.a.id}")["name"]
        self._fill(self.a)

    def _fill(self, project: Project) -> None:
        refs = project.refs
        p = f"/v1/projects/{project.id}"
        if not self._exists(f"{p}/provider-apps", refs.get("providerAppId")):
            app = self._post(
                f"{p}/provider-apps",
                {"provider": PROVIDER, "clientId": "fuzz", "clientSecret": "fuzz", "scopes": []},
            )
            refs["providerAppId"] = [app["id"]]
        if not self._exists(f"{p}/destinations", refs.get("destination")):
            name = f"hook-{uuid.uuid4().hex[:8]}"
            made = self._post(
                f"{p}/destinations", {"name": name, "type": "webhook", "metadata": {"url": HOOK}}
            )
            refs["destination"] = [made["id"], name]
        if not self._exists(f"{p}/topics", refs.get("topicId")):
            refs["topicId"] = [
                self._post(f"{p}/topics", {"name": f"t-{uuid.uuid4().hex[:8]}"})["id"]
            ]
        if not self._exists(f"{p}/jwt-keys", refs.get("keyId"), key="kid"):
            pem = spki_pem(new_rsa_key().public_key())
            made = self._post(
                f"{p}/jwt-keys", {"label": "fuzz", "algorithm": "RS256", "publicKeyPem": pem}
            )
            refs["keyId"] = [made["kid"]]
        if not self._exists(f"{p}/integrations", refs.get("integrationId")):
            name = f"crm-{uuid.uuid4().hex[:8]}"
            deployed = self._send(
                "PUT",
                f"{p}/integrations:batch",
                {"sourceYaml": _manifest(name, refs["destination"][1])},
            )
            integration = deployed[0]
            refs["integrationId"] = [integration["id"]]
            refs["integrationIdOrName"] = [integration["id"], name]
            refs.pop("installationId", None)
        if not self._exists(f"{p}/connections", refs.get("connectionId")):
            connection = self._post(
                f"{p}/connections:generate",
                {
                    "provider": PROVIDER,
                    "groupRef": GROUP,
                    "consumerRef": "fuzz-user",
                    "oauth2AuthorizationCode": {"accessToken": {"token": uuid.uuid4().hex}},
                },
            )
            refs["connectionId"] = [connection["id"]]
        installations = f"{p}/integrations/{refs['integrationId'][0]}/installations"
        if not self._exists(installations, refs.get("installationId")):
            made = self._post(installations, {"groupRef": GROUP, "config": {"content": {}}})
            refs["installationId"] = [made["id"]]
        refs["provider"] = [PROVIDER]
        refs["objectName"] = [OBJECT]

    # -- REST with the admin key ----------------------------------------------------------

    def _project(self, prefix: str) -> Project:
        made = self._post(
            "/v1/projects", {"name": f"{prefix}-{uuid.uuid4().hex[:8]}", "appName": prefix}
        )
        return Project(made["id"], made["name"])

    def _key(self, project: Project) -> str:
        made = self._post(
            f"/v1/projects/{project.id}/api-keys", {"label": "fuzz", "scopes": ["full"]}
        )
        key: str = made["key"]
        return key

    @staticmethod
    def _key_id(secret: str) -> str:
        """What names a key in paths: its public prefix (`amp_<hex>`), not its secret."""
        return "_".join(secret.split("_")[:2])

    def _exists(self, collection: str, ids: list[str] | None, key: str = "id") -> bool:
        if not ids:
            return False
        listed = self._get(collection)
        return ids[0] in {item.get(key) for item in listed}

    def _get(self, path: str) -> Any:
        return self._send("GET", path, None)

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._send("POST", path, body)

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        response = self.http.request(method, self.api + path, json=body, timeout=30)
        if response.status_code >= 300:
            raise SeedError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None
