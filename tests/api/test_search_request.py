"""The Search API's own checks, alone: every problem of a request is named at once, filter
values keep their JSON type, and filters on mapped names reach the provider under the
provider's field name while fields the installation does not read are refused."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.search.v1 import search_pb2
from google.protobuf import json_format

from services.api.search.service import _checked_request, _provider_filters
from services.domain.read_plan import read_plan


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Context:
    """The little of a ServicerContext that an abort uses."""

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    async def abort(self, code: grpc.StatusCode, message: str, **_: Any) -> None:
        raise Refused(code, message)


def request(query: dict[str, Any], group_ref: str = "acme") -> search_pb2.SearchRecordsRequest:
    return search_pb2.SearchRecordsRequest(
        project_id_or_name="p",
        integration_id="i",
        group_ref=group_ref,
        query=json_format.ParseDict(query, search_pb2.SearchQuery()),
    )


async def test_values_keep_their_json_types() -> None:
    values = await _checked_request(
        Context(),
        request(
            {
                "objectName": "contacts",
                "fieldFilters": [
                    {"fieldName": "email", "operator": "eq", "value": "a@b.c"},
                    {"fieldName": "vip", "operator": "eq", "value": True},
                    {"fieldName": "score", "operator": "eq", "value": 3},
                    {"fieldName": "ratio", "operator": "eq", "value": 0.5},
                ],
            }
        ),
    )
    assert values == ["a@b.c", True, 3, 0.5]
    assert isinstance(values[2], int) and not isinstance(values[2], bool)


async def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(Refused) as refused:
        await _checked_request(
            Context(),
            request(
                {
                    "objectName": "",
                    "fieldFilters": [
                        {"fieldName": "", "operator": "eq", "value": "x"},
                        {"fieldName": "a", "operator": "EQ", "value": None},
                    ],
                },
                group_ref=" ",
            ),
        )
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    message = str(refused.value)
    for named in (
        "query.groupRef",
        "body.objectName",
        "body.fieldFilters[0].fieldName",
        "body.fieldFilters[1].operator",
        "body.fieldFilters[1].value",
    ):
        assert named in message, named


def contacts_plan() -> Any:
    revision = json_format.ParseDict(
        {
            "name": "crm",
            "provider": "salesforce",
            "read": {
                "objects": [
                    {
                        "objectName": "Contact",
                        "destination": "hook",
                        "requiredFields": [{"fieldName": "Email", "mapToName": "emailAddress"}],
                        "optionalFields": [{"fieldName": "LastName"}, {"fieldName": "Phone"}],
                    }
                ]
            },
        },
        manifest_pb2.Integration(),
    )
    config = json_format.ParseDict(
        {
            "read": {
                "objects": {
                    "Contact": {"objectName": "Contact", "selectedFields": {"LastName": True}}
                }
            }
        },
        config_pb2.ConfigContent(),
    )
    return read_plan(revision, config, "Contact")


def filters(*names: str) -> list[search_pb2.FieldFilter]:
    return [search_pb2.FieldFilter(field_name=name, operator="eq") for name in names]


async def test_mapped_names_become_the_providers_and_read_fields_pass() -> None:
    equals = await _provider_filters(
        Context(), contacts_plan(), filters("emailAddress", "lastname", "Email"), ["a", "b", "c"]
    )
    assert equals == [("Email", "a"), ("LastName", "b"), ("Email", "c")]


async def test_a_field_the_installation_does_not_read_is_refused() -> None:
    # Phone is optional and not selected; Nickname does not exist.
    with pytest.raises(Refused) as refused:
        await _provider_filters(
            Context(), contacts_plan(), filters("LastName", "Phone", "Nickname"), ["x", "y", "z"]
        )
    message = str(refused.value)
    assert "body.fieldFilters[1].fieldName: 'Phone' is not a field" in message
    assert "body.fieldFilters[2].fieldName: 'Nickname'" in message
    assert "(it reads email, emailAddress, lastname)" in message
