"""JWT keys and customer JWTs through the edge: a builder registers an RSA public key,
signs short-lived tokens naming a group and a consumer, and such a token reaches only its
project, as a frontend caller. Every bad token is a 401 naming what is wrong, and changes
nothing."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from ampmesh.platform.v1 import projects_pb2, projects_pb2_grpc
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.control_plane import (
    b64url,
    bearer,
    create_project,
    customer_claims,
    issue_names,
    listed,
    new_rsa_key,
    problem,
    register_jwt_key,
    sign_jwt,
    spki_pem,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@dataclass
class Signer:
    """A project and a registered key pair that signs its customers' tokens."""

    project_id: str
    project_name: str
    kid: str
    private_key: rsa.RSAPrivateKey

    def token(self, *, kid: str | None = None, **overrides: Any) -> str:
        return sign_jwt(self.private_key, customer_claims(**overrides), kid or self.kid)


async def new_signer(admin: httpx.AsyncClient) -> Signer:
    project = await create_project(admin, "jwt", "JWT")
    private_key = new_rsa_key()
    kid = await register_jwt_key(admin, project["id"], spki_pem(private_key.public_key()))
    return Signer(project["id"], project["name"], kid, private_key)


@pytest.fixture(scope="module")
async def signer_a(admin: httpx.AsyncClient) -> Signer:
    return await new_signer(admin)


@pytest.fixture(scope="module")
async def signer_b(admin: httpx.AsyncClient) -> Signer:
    return await new_signer(admin)


async def jwt_keys_of(admin: httpx.AsyncClient, project_id: str) -> list[dict[str, Any]]:
    return await listed(admin, f"/v1/projects/{project_id}/jwt-keys")


async def test_jwt_key_lifecycle(admin: httpx.AsyncClient, signer_a: Signer) -> None:
    base = f"/v1/projects/{signer_a.project_name}/jwt-keys"
    pem = spki_pem(new_rsa_key().public_key())
    kid = await register_jwt_key(admin, signer_a.project_id, pem, "rotation-2")
    got = await admin.get(f"{base}/{kid}")
    assert got.status_code == 200, got.text
    key = got.json()
    assert key["id"] == kid and key["projectId"] == signer_a.project_id
    assert key["label"] == "rotation-2" and key["algorithm"] == "RSA"
    assert key["publicKeyPem"] == pem and key["active"] is True
    assert key["createTime"] and key["updateTime"]
    assert key in await jwt_keys_of(admin, signer_a.project_id)

    # The reference's examples rename with "name"; both spellings work.
    renamed = await admin.patch(
        f"{base}/{kid}", json={"updateMask": ["name"], "jwtKey": {"name": "old"}}
    )
    assert renamed.status_code == 200 and renamed.json()["label"] == "old", renamed.text
    # Naming active in the mask without a value is refused, not read as false.
    unchanged = (await admin.get(f"{base}/{kid}")).json()
    vague = await admin.patch(
        f"{base}/{kid}", json={"updateMask": ["active", "label"], "jwtKey": {"label": "off"}}
    )
    assert problem(vague, 400)["issues"][0]["name"] == "jwtKey.active"
    assert (await admin.get(f"{base}/{kid}")).json() == unchanged
    off = await admin.patch(
        f"{base}/{kid}",
        json={"updateMask": ["active", "label"], "jwtKey": {"label": "off", "active": False}},
    )
    assert off.json()["active"] is False and off.json()["label"] == "off", off.text
    active = await admin.get(base, params={"active": "true"})
    assert kid not in {k["id"] for k in active.json()}
    assert signer_a.kid in {k["id"] for k in active.json()}

    before = (await admin.get(f"{base}/{kid}")).json()
    for body, field in (
        ({"updateMask": ["publicKeyPem"], "jwtKey": {}}, "body.updateMask"),
        ({"updateMask": ["label"], "jwtKey": {"label": ""}}, "body.jwtKey.label"),
    ):
        refused = problem(await admin.patch(f"{base}/{kid}", json=body), 400)
        assert issue_names(refused) == {field}, refused
    assert (await admin.get(f"{base}/{kid}")).json() == before

    deleted = await admin.delete(f"{base}/{kid}")
    assert deleted.status_code == 204 and not deleted.content
    problem(await admin.get(f"{base}/{kid}"), 404)
    problem(await admin.delete(f"{base}/{kid}"), 404)
    problem(await admin.get(f"{base}/not-a-uuid"), 404)


async def test_registering_refuses_what_is_not_an_rsa_key_of_2048_bits(
    admin: httpx.AsyncClient, signer_a: Signer
) -> None:
    good = spki_pem(new_rsa_key().public_key())
    small = spki_pem(new_rsa_key(1024).public_key())
    elliptic = spki_pem(ec.generate_private_key(ec.SECP256R1()).public_key())
    before = await jwt_keys_of(admin, signer_a.project_id)
    for body, field, words in (
        ({"label": "x", "algorithm": "RS256", "publicKeyPem": "nope"}, "publicKeyPem", "PEM"),
        ({"label": "x", "algorithm": "RS256", "publicKeyPem": small}, "publicKeyPem", "1024"),
        ({"label": "x", "algorithm": "RS256", "publicKeyPem": elliptic}, "publicKeyPem", "RSA"),
        ({"label": "x", "algorithm": "RS256", "publicKeyPem": ""}, "publicKeyPem", "required"),
        ({"label": "x", "algorithm": "ES256", "publicKeyPem": good}, "algorithm", "RS256"),
        ({"label": "", "algorithm": "RS256", "publicKeyPem": good}, "label", "required"),
    ):
        refused = problem(
            await admin.post(f"/v1/projects/{signer_a.project_id}/jwt-keys", json=body), 400
        )
        assert issue_names(refused) == {f"body.{field}"}, refused
        assert words in refused["detail"], refused
    assert await jwt_keys_of(admin, signer_a.project_id) == before


async def test_a_valid_token_reaches_only_its_project_as_a_frontend_caller(
    stack: Stack, anonymous: httpx.AsyncClient, signer_a: Signer, signer_b: Signer
) -> None:
    token = bearer(signer_a.token())
    own = await anonymous.get(f"/v1/projects/{signer_a.project_name}", headers=token)
    assert own.status_code == 200, own.text
    assert own.json()["id"] == signer_a.project_id
    projects = await anonymous.get("/v1/projects", headers=token)
    assert [p["id"] for p in projects.json()] == [signer_a.project_id]

    theirs = problem(await anonymous.get(f"/v1/projects/{signer_b.project_id}", headers=token), 404)
    assert theirs["detail"] == f"project {signer_b.project_id!r} not found"

    # A customer token is a frontend credential: nothing that configures the project.
    for method, path in (
        ("GET", f"/v1/projects/{signer_a.project_id}/api-keys"),
        ("GET", f"/v1/projects/{signer_a.project_id}/jwt-keys"),
    ):
        problem(await anonymous.request(method, path, headers=token), 403)

    # gRPC callers send the same header as metadata.
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        got = await projects_pb2_grpc.ProjectServiceStub(channel).GetProject(
            projects_pb2.GetProjectRequest(project_id_or_name=signer_a.project_id),
            metadata=(("authorization", f"Bearer {signer_a.token()}"),),
            timeout=10,
        )
    assert got.id == signer_a.project_id


async def test_every_bad_token_is_a_401_naming_the_problem_and_changes_nothing(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, signer_a: Signer, signer_b: Signer
) -> None:
    now = int(time.time())
    stranger = new_rsa_key()
    forged = Signer(signer_a.project_id, signer_a.project_name, signer_a.kid, stranger)
    # Signed by B's private key but naming A's key, and the reverse.
    b_signs_as_a = Signer(
        signer_a.project_id, signer_a.project_name, signer_a.kid, signer_b.private_key
    )
    a_signs_as_b = Signer(
        signer_b.project_id, signer_b.project_name, signer_b.kid, signer_a.private_key
    )
    none_header = {"alg": "none", "typ": "JWT", "kid": signer_a.kid}
    claims = {"groupRef": "acme", "consumerRef": "alice", "iat": now, "exp": now + 60}
    unsigned = f"{b64url(none_header)}.{b64url(claims)}."

    # A key registered then deactivated, and one registered then deleted.
    inactive_key = new_rsa_key()
    inactive_kid = await register_jwt_key(
        admin, signer_a.project_id, spki_pem(inactive_key.public_key()), "inactive"
    )
    off = await admin.patch(
        f"/v1/projects/{signer_a.project_id}/jwt-keys/{inactive_kid}",
        json={"updateMask": ["active"], "jwtKey": {"active": False}},
    )
    assert off.status_code == 200, off.text
    inactive = Signer(signer_a.project_id, signer_a.project_name, inactive_kid, inactive_key)
    deleted_key = new_rsa_key()
    deleted_kid = await register_jwt_key(
        admin, signer_a.project_id, spki_pem(deleted_key.public_key()), "deleted"
    )
    assert (
        await admin.delete(f"/v1/projects/{signer_a.project_id}/jwt-keys/{deleted_kid}")
    ).status_code == 204
    deleted = Signer(signer_a.project_id, signer_a.project_name, deleted_kid, deleted_key)

    cases = {
        "expired": (signer_a.token(iat=now - 400, exp=now - 100), "expired"),
        "forged signature": (forged.token(), "signature"),
        "another project's private key": (b_signs_as_a.token(), "signature"),
        "the other way round": (a_signs_as_b.token(), "signature"),
        "alg none": (unsigned, "RS256"),
        "lifetime over 10 minutes": (signer_a.token(iat=now, exp=now + 601), "exp - iat"),
        "unknown kid": (signer_a.token(kid=str(uuid.uuid4())), "no JWT key"),
        "kid not a uuid": (signer_a.token(kid="my-key"), "no JWT key"),
        "inactive key": (inactive.token(), "not active"),
        "deleted key": (deleted.token(), "no JWT key"),
        "no groupRef": (signer_a.token(groupRef=None), "groupRef"),
        "no consumerRef": (signer_a.token(consumerRef=""), "consumerRef"),
        "no exp": (signer_a.token(exp=None), "exp"),
        "not a JWT": ("garbage", "well-formed"),
    }
    project = f"/v1/projects/{signer_a.project_id}"
    before = (await admin.get(project)).json()
    for case, (token, words) in cases.items():
        refused = problem(
            await anonymous.patch(
                project,
                json={"updateMask": ["appName"], "project": {"appName": "changed"}},
                headers=bearer(token),
            ),
            401,
        )
        assert words in refused["detail"], (case, refused)
        assert token not in refused["detail"] and token not in json.dumps(refused), case
    assert (await admin.get(project)).json() == before
