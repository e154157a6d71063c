"""JSON Patch of one object's config (services/api/platform/config_patch.py): the
operations the contract allows, applied in order by the jsonpatch library, and every
refusal naming the operation (its number, op and path) and why."""

from __future__ import annotations

from typing import Any

import pytest

from services.api.platform.config_patch import PatchError, apply_changes

CONFIG = {"objectName": "companies", "schedule": "0 * * * *", "selectedFields": {"name": True}}


def test_add_replace_remove_in_order() -> None:
    patched = apply_changes(
        CONFIG,
        [
            ("add", "/selectedFields/phone", True),
            ("replace", "/schedule", "*/15 * * * *"),
            ("remove", "/selectedFields/name", None),
            ("add", "/fieldFilters", []),
            ("add", "/fieldFilters/-", {"fieldName": "a"}),
            ("add", "/fieldFilters/0", {"fieldName": "b"}),
        ],
    )
    assert patched == {
        "objectName": "companies",
        "schedule": "*/15 * * * *",
        "selectedFields": {"phone": True},
        "fieldFilters": [{"fieldName": "b"}, {"fieldName": "a"}],
    }


def test_the_document_given_is_left_unchanged() -> None:
    before = {"objectName": "companies", "selectedFields": {"name": True}}
    apply_changes(before, [("remove", "/selectedFields/name", None)])
    assert before == {"objectName": "companies", "selectedFields": {"name": True}}


def test_the_value_added_is_copied() -> None:
    value: dict[str, Any] = {}
    patched = apply_changes(CONFIG, [("add", "/x", value), ("add", "/x/y", 1)])
    assert patched["x"] == {"y": 1}
    assert value == {}


def test_a_missing_value_sets_null() -> None:
    # The contract's value is optional; null clears the field once parsed into a config.
    assert apply_changes(CONFIG, [("add", "/schedule", None)])["schedule"] is None
    assert apply_changes(CONFIG, [("replace", "/schedule", None)])["schedule"] is None


def test_the_whole_document_can_be_replaced() -> None:
    assert apply_changes(CONFIG, [("replace", "", {"objectName": "x"})]) == {"objectName": "x"}
    assert apply_changes(CONFIG, [("add", "", {"objectName": "y"})]) == {"objectName": "y"}


def test_pointer_escapes() -> None:
    patched = apply_changes({}, [("add", "/a~1b", 1), ("add", "/c~0d", 2)])
    assert patched == {"a/b": 1, "c~d": 2}


@pytest.mark.parametrize(
    ("operations", "why"),
    [
        ([("remove", "/nope", None)], "operation 1 (remove '/nope'): "),
        ([("replace", "/nope", 1)], "operation 1 (replace '/nope'): "),
        ([("add", "/nope/deeper", 1)], "'nope' does not exist"),
        ([("move", "/a", None)], "operation 1 (move '/a'): op must be add, remove or replace"),
        ([("copy", "/a", None)], "op must be add, remove or replace"),
        ([("test", "/a", 1)], "op must be add, remove or replace"),
        ([("add", "schedule", 1)], "'schedule' is not a JSON Pointer (it must start with '/')"),
        ([("remove", "", None)], "the whole document cannot be removed"),
        ([("add", "/schedule/x", 1)], "operation 1 (add '/schedule/x'): "),
        ([("add", "/l", []), ("add", "/l/1", 1)], "operation 2 (add '/l/1'): "),
        ([("add", "/l", [1]), ("replace", "/l/1", 2)], "operation 2 (replace '/l/1'): "),
        ([("add", "/l", [1]), ("remove", "/l/01", None)], "'01' is not a valid sequence index"),
        ([("add", "/l", [1]), ("replace", "/l/-", 2)], "operation 2 (replace '/l/-'): "),
    ],
)
def test_refusals_name_the_operation_and_why(
    operations: list[tuple[str, str, Any]], why: str
) -> None:
    with pytest.raises(PatchError) as refused:
        apply_changes(CONFIG, operations)
    assert why in str(refused.value)


def test_a_missing_member_is_named_without_the_document() -> None:
    with pytest.raises(PatchError) as refused:
        apply_changes({"big": "x" * 10_000}, [("add", "/nope/deeper", 1)])
    assert str(refused.value) == "operation 1 (add '/nope/deeper'): 'nope' does not exist"


def test_operations_after_a_refusal_are_not_applied() -> None:
    before = {"objectName": "companies"}
    with pytest.raises(PatchError, match="operation 2"):
        apply_changes(before, [("add", "/a", 1), ("remove", "/b", None), ("add", "/c", 1)])
    assert before == {"objectName": "companies"}
