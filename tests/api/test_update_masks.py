"""UpdateInstallation's update masks (services/api/platform/update_masks.py): which are
allowed, and what each changes in the config being built, without a database."""

from __future__ import annotations

import uuid
from typing import Any

from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.platform.v1 import installations_pb2
from google.protobuf import json_format

from services.api.platform.config_checks import ContentChecker
from services.api.platform.update_masks import (
    CONNECTION_AT,
    UPDATE_AUTHOR,
    Update,
    apply_masks,
    mask_problems,
)

REVISION = json_format.ParseDict(
    {
        "provider": "hubspot",
        "read": {"objects": [{"objectName": "companies"}, {"objectName": "contacts"}]},
        "write": {"objects": [{"objectName": "deals"}]},
    },
    manifest_pb2.Integration(),
)
STORED = {"read": {"objects": {"companies": {"objectName": "companies"}}}}
AT = "body.installation."


def update(given: dict[str, Any], connection: uuid.UUID | str | None = None) -> Update:
    return Update(
        given=json_format.ParseDict(given, installations_pb2.InstallationPatch()),
        content=json_format.ParseDict(STORED, config_pb2.ConfigContent()),
        checker=ContentChecker(REVISION, {"crmWebhook"}, f"{AT}config.content.", {}),
        connection=connection,
    )


def test_mask_problems() -> None:
    assert "is required" in mask_problems([])["body.updateMask"]
    for unknown in ("groupRef", "config.content.read.objects", "config.content"):
        assert "cannot be updated" in mask_problems([unknown])["body.updateMask"]
    allowed = ["connectionId", "config.createdBy", "config.content.read.objects.x"]
    assert mask_problems(allowed) == {}


def test_one_object_is_added_beside_the_others() -> None:
    contacts = {"objectName": "contacts", "destination": "crmWebhook"}
    done = update({"config": {"content": {"read": {"objects": {"contacts": contacts}}}}})
    apply_masks(done, ["config.content.read.objects.contacts"])
    assert done.problems == {}
    assert set(done.content.read.objects) == {"companies", "contacts"}
    assert done.config_changed and done.created_by == UPDATE_AUTHOR


def test_a_mask_needs_its_part_of_the_body() -> None:
    done = update({"config": {}})
    apply_masks(
        done,
        [
            "config.content.read.objects.contacts",
            "config.content.write.objects",
            "config.content.proxy.enabled",
            "config.createdBy",
        ],
    )
    assert list(done.problems) == [
        f"{AT}config.content.read.objects.contacts",
        f"{AT}config.content.write.objects",
        f"{AT}config.content.proxy.enabled",
        f"{AT}config.createdBy",
    ]


def test_a_section_is_replaced_and_checked() -> None:
    deals = {"objectName": "deals", "deletionSettings": {}}
    done = update({"config": {"content": {"write": {"objects": {"deals": deals}}}}})
    apply_masks(done, ["config.content.write.objects"])
    assert list(done.problems) == [
        f"{AT}config.content.write.objects.deals.deletionSettings.enabled"
    ]
    assert set(done.content.write.objects) == {"deals"}


def test_proxy_is_checked_against_the_revision() -> None:
    done = update({"config": {"content": {"proxy": {"enabled": True}}}})
    apply_masks(done, ["config.content.proxy.enabled"])
    assert "does not enable proxy" in done.problems[f"{AT}config.content.proxy.enabled"]


def test_created_by() -> None:
    done = update({"config": {"createdBy": "builder:bob"}})
    apply_masks(done, ["config.createdBy"])
    assert done.problems == {} and done.created_by == "builder:bob" and done.config_changed


def test_the_connection_changes_no_config() -> None:
    found = uuid.uuid4()
    done = update({"connectionId": str(found)}, connection=found)
    apply_masks(done, ["connectionId"])
    assert done.problems == {} and done.connection_id == found and not done.config_changed
    refused = update({"connectionId": "x"}, connection="names no connection of group 'acme'")
    apply_masks(refused, ["connectionId"])
    assert refused.problems == {CONNECTION_AT: "names no connection of group 'acme'"}
    missing = update({})
    apply_masks(missing, ["connectionId"])
    assert "is required by the mask" in missing.problems[CONNECTION_AT]
