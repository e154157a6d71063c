"""A write resolved once: how records the builder sends for one object of one installation
become what the connector writes (services/domain/connectors/writes.py), from the
integration's manifest (the revision the config was saved against) and the
installation's config.

The api resolves a plan per request (write_plan) and prepares each record with it
(prepare); the result is in the provider's field names, so the workflows and the
connectors never see the builder's names. Pure: no I/O, so every rule below is
unit-tested (tests/domain/test_write_plan.py). What only the provider knows (its field
list, a record's current values) the caller checks or reads, with what the prepared
record exposes.

The rules, as the reference states them (and where it is silent, as decided here):
- the object is named by its provider name, or by the read object's mapped name when the
  write object inherits mappings (`inheritMapping`); the provider name wins when both
  match;
- mappings apply only with `inheritMapping`: the config's `selectedFieldMappings` of the
  same read object, then the manifest read object's fieldName/mapToName pairs, required
  or optional (unlike reads, an optional pair applies unselected: the builder writes
  under the name it reads under). A customer-picked mapping (mapToName without
  fieldName) the customer left unmapped is stripped from records when optional, refused
  when required (the value has nowhere to go and the installation is incomplete);
- a record's other keys are provider names, as given; two keys landing on one provider
  field (or one on a field nested in the other's) are refused, naming both. Provider
  names compare case-insensitively (the read side lower-cases them; HubSpot's are lower
  case, Salesforce's are case-insensitive);
- nested provider fields ("$['address']['city']", as in the manifest) are written
  nested: {"address": {"city": ...}}, merged with the record's other paths;
- values are JSON: string, number (finite), boolean, null, or an object/array of those,
  written as given (providers' compound and multi-valued fields take objects and
  arrays; what a field accepts is the provider's to say). A number with no fraction is
  written as an integer: protobuf's Struct, which carries records through the api, holds
  every number as a double, and 5.0 where an integer field wants 5 is refused by some
  providers;
- update and delete need the record's "id", a non-empty string; it becomes the item's
  record_id, not a field. Delete writes the id alone and ignores every other key. A
  create's "id" is refused unless it is a mapped builder name (the provider assigns ids);
- defaults (the config's `selectedFieldSettings`, keyed by provider field name) apply
  only to fields the record leaves out: on create unless writeOnCreate is "never"; on
  update when writeOnUpdate is "always" (the default), never with "never", and with
  "ifEmpty" only where the provider's current value is unset or "" (returned apart, in
  PreparedRecord.if_empty: the caller reads the current values and calls
  fill_if_empty). The deprecated `selectedValueDefaults` (a bare string: always; an
  object {value, applyOnUpdate}: on create, and on update unless "never") apply the
  same way; a `selectedFieldSettings` default wins over one for the same field. A
  setting this code does not know (the config check refuses them at save time) writes
  nothing: a default must not overwrite customer data on a guess;
- the manifest's `valueDefaults.allowAnyFields` says which fields the install UI offers
  defaults for; the plan applies whatever defaults the saved config holds;
- deletes are allowed only with the config's `deletionSettings.enabled` (off by default):
  the plan says so in deletion_enabled, and the caller refuses the request, which is not
  about any one record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from google.protobuf import struct_pb2

from services.domain.connectors.writes import WriteItem, WriteType

__all__ = [
    "FieldDefault",
    "FieldRefusal",
    "ObjectNotWritten",
    "OnUpdate",
    "PreparedRecord",
    "RecordRefused",
    "WritePlan",
    "fill_if_empty",
    "json_value",
    "prepare",
    "write_plan",
]

# Doubles hold every integer up to 2**53 exactly; past it a "whole" double may not be the
# integer the sender meant, so it stays a double.
_EXACT_INTEGER = 2**53
# A nested provider field, as the manifest writes it (services/domain/manifest/rules.py).
_JSON_PATH = re.compile(r"^\$(?:\['[^'\]\x00-\x1f]+'\])+$")
_JSON_PATH_PART = re.compile(r"\['([^'\]\x00-\x1f]+)'\]")


class ObjectNotWritten(LookupError):
    """The integration's revision declares no write object of that name."""


@dataclass(frozen=True)
class FieldRefusal:
    """Why one field of a record cannot be written."""

    # The field as the request names it: `<field_prefix>.<the record's key>`.
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class RecordRefused(ValueError):
    """A record that cannot be written, with every field to blame."""

    def __init__(self, refusals: Iterable[FieldRefusal]) -> None:
        self.refusals = list(refusals)
        super().__init__("; ".join(map(str, self.refusals)))


class OnUpdate(StrEnum):
    """When a default applies on update (the reference's writeOnUpdate)."""

    ALWAYS = "always"
    NEVER = "never"
    # Only where the provider's current value is unset or an empty string.
    IF_EMPTY = "ifEmpty"


@dataclass(frozen=True)
class FieldDefault:
    """A value written to a provider field the record leaves out."""

    value: str | int | float | bool
    on_create: bool
    on_update: OnUpdate


@dataclass(frozen=True)
class WritePlan:
    """How records of one object of one installation are written."""

    # The provider's name of the object.
    object_name: str
    # The builder's name of it: the read object's mapped name when the write object
    # inherits mappings and there is one, else object_name.
    shown_name: str
    # The config's deletionSettings.enabled; deletes are off unless it is true.
    deletion_enabled: bool
    # Builder field name -> provider field name (possibly nested, "$['a']['b']").
    mappings: Mapping[str, str] = field(default_factory=dict)
    # Builder names of optional customer-picked mappings the customer left unmapped:
    # stripped from records without a word, as the reference does.
    dropped: frozenset[str] = frozenset()
    # Builder names of required customer-picked mappings the config does not complete:
    # a record giving one is refused.
    unmapped_required: frozenset[str] = frozenset()
    # Provider field name (as the config spells it) -> its default.
    defaults: Mapping[str, FieldDefault] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedRecord:
    """One record in the provider's names, ready for a WriteBatch."""

    # Provider-named fields; record_id from the record's "id" (update, delete);
    # associations empty (the caller adds the request's).
    item: WriteItem
    # Update only: provider field -> default to write where the current value is empty
    # (writeOnUpdate "ifEmpty"); see fill_if_empty.
    if_empty: Mapping[str, Any] = field(default_factory=dict)
    # Top-level provider field of item.fields -> the record's field that put it there,
    # named as refusals name it; the fields not listed came from the plan's defaults.
    origins: Mapping[str, str] = field(default_factory=dict)

    @property
    def provider_fields(self) -> frozenset[str]:
        """The top-level provider fields the write may touch (its fields and the
        ifEmpty candidates): what the caller checks against the object's metadata."""
        return frozenset(self.item.fields) | {_path(name)[0] for name in self.if_empty}


def write_plan(
    revision: manifest_pb2.Integration,
    content: config_pb2.ConfigContent | None,
    object_name: str,
) -> WritePlan:
    """The plan of one write object the revision declares, named by its provider name or
    (with inheritMapping) by its read object's mapped name. The config need not
    configure it: an unconfigured object writes without defaults or deletes. Raises
    ObjectNotWritten when the revision declares no such write object."""
    declared = _declared(revision, object_name)
    name = declared.object_name
    read = next((o for o in revision.read.objects if o.object_name == name), None)
    configured = _configured(content, "write").get(name) or config_pb2.WriteConfigObject(
        object_name=name
    )
    inherits = declared.inherit_mapping
    mappings: dict[str, str] = {}
    dropped: set[str] = set()
    unmapped_required: set[str] = set()
    if inherits:
        read_config = _configured(content, "read").get(name)
        if read_config is not None:
            mappings.update({b: p for b, p in read_config.selected_field_mappings.items() if p})
        if read is not None:
            for required, entries in ((True, read.required_fields), (False, read.optional_fields)):
                for entry in entries:
                    if not entry.map_to_name:
                        continue
                    if entry.field_name:
                        mappings.setdefault(entry.map_to_name, entry.field_name)
                    elif entry.map_to_name not in mappings:
                        (unmapped_required if required else dropped).add(entry.map_to_name)
    return WritePlan(
        object_name=name,
        shown_name=(read.map_to_name if inherits and read is not None else "") or name,
        deletion_enabled=configured.deletion_settings.enabled,
        mappings=mappings,
        dropped=frozenset(dropped),
        unmapped_required=frozenset(unmapped_required),
        defaults=_defaults(configured),
    )


def prepare(
    plan: WritePlan,
    write_type: WriteType,
    record: Mapping[str, Any],
    *,
    field_prefix: str = "record",
) -> PreparedRecord:
    """The record in the provider's names, with the plan's defaults. Raises
    RecordRefused listing every field that cannot be written, named under field_prefix
    (the api passes the JSON path of the record in its request)."""
    refusals: list[FieldRefusal] = []
    record_id = ""
    if write_type in (WriteType.UPDATE, WriteType.DELETE):
        given = record.get("id")
        if isinstance(given, str) and given.strip():
            record_id = given
        else:
            found = (
                "missing"
                if "id" not in record
                else "empty"
                if isinstance(given, str)
                else f"found {_kind(given)}"
            )
            refusals.append(
                FieldRefusal(
                    f"{field_prefix}.id",
                    f"is required to {write_type.value} a record: the provider's id of it, "
                    f"a non-empty string ({found})",
                )
            )
    if write_type is WriteType.DELETE:
        if refusals:
            raise RecordRefused(refusals)
        return PreparedRecord(item=WriteItem(record_id=record_id))

    fields = _Fields()
    origins: dict[str, str] = {}
    for key, value in record.items():
        if write_type is WriteType.UPDATE and key == "id":
            continue
        at = f"{field_prefix}.{key}"
        if not isinstance(key, str) or not key:
            refusals.append(FieldRefusal(at, "field names must be non-empty strings"))
            continue
        if key in plan.dropped:
            continue
        if key in plan.unmapped_required:
            refusals.append(
                FieldRefusal(
                    at,
                    "this installation maps no field of its own to it: the customer has not "
                    "completed this required mapping",
                )
            )
            continue
        if key == "id" and key not in plan.mappings:
            refusals.append(
                FieldRefusal(at, "a record to create has no id: the provider assigns it")
            )
            continue
        problem = _value_problem(value)
        if problem is not None:
            refusals.append(FieldRefusal(at, problem))
            continue
        target = plan.mappings.get(key, key)
        clash = fields.clash(_path(target))
        if clash is not None:
            other_key, other_target = clash
            where = (
                f"the provider's field {target!r}"
                if other_target.lower() == target.lower()
                else f"{target!r}, which overlaps {other_target!r}"
            )
            refusals.append(
                FieldRefusal(
                    at,
                    f"writes {where}, as {field_prefix}.{other_key} does: send only one of them",
                )
            )
            continue
        top = fields.put(_path(target), json_value(value), (key, target))
        origins.setdefault(top, at)
    if refusals:
        raise RecordRefused(refusals)

    if_empty: dict[str, Any] = {}
    for name, default in plan.defaults.items():
        path = _path(name)
        if fields.clash(path) is not None:
            continue  # the record gives it (or a field holding it): the record wins
        if write_type is WriteType.CREATE:
            if default.on_create:
                fields.put(path, default.value, (name, name))
        elif default.on_update is OnUpdate.ALWAYS:
            fields.put(path, default.value, (name, name))
        elif default.on_update is OnUpdate.IF_EMPTY:
            if_empty[name] = default.value
    return PreparedRecord(
        item=WriteItem(fields=fields.values, record_id=record_id),
        if_empty=if_empty,
        origins=origins,
    )


def fill_if_empty(prepared: PreparedRecord, current: Mapping[str, Any]) -> WriteItem:
    """The prepared item with each ifEmpty default whose field is empty in `current`
    (the provider's current record, by provider field name): missing, null or ""."""
    if not prepared.if_empty:
        return prepared.item
    fields = _Fields()
    fields.values = _copy(prepared.item.fields)
    for name, value in prepared.if_empty.items():
        path = _path(name)
        if _lookup(current, path) not in (None, ""):
            continue
        if fields.clash(path) is None and _lookup(fields.values, path) is None:
            fields.put(path, value, (name, name))
    return replace(prepared.item, fields=fields.values)


def json_value(value: Any) -> Any:
    """The value as JSON data: mappings become dicts, sequences lists, and whole numbers
    held as doubles integers (what a Struct-carried record needs before it is written)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_INTEGER:
        return int(value)
    if isinstance(value, Mapping):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def _value_problem(value: Any, at: str = "") -> str | None:
    """Why a record's value is not JSON data, or None."""
    inside = f" at {at}" if at else ""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be a finite number{inside}"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"object keys must be strings{inside} (found {_kind(key)})"
            problem = _value_problem(item, f"{at}[{key!r}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _value_problem(item, f"{at}[{index}]")
            if problem is not None:
                return problem
        return None
    return (
        f"must be a string, a number, a boolean, null, an object or an array{inside} "
        f"(found {_kind(value)})"
    )


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _path(name: str) -> tuple[str, ...]:
    """A provider field as the keys leading to it: ("address", "city") for
    "$['address']['city']", (name,) for a plain name."""
    if _JSON_PATH.match(name):
        return tuple(_JSON_PATH_PART.findall(name))
    return (name,)


def _same_key(node: Mapping[str, Any], part: str) -> str:
    """The key of node naming `part` regardless of case, or part itself."""
    lowered = part.lower()
    return next((k for k in node if k.lower() == lowered), part)


def _lookup(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = record
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(_same_key(node, part))
    return node


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    return value


class _Fields:
    """Provider fields being assembled, remembering who set each path so that two
    setters of one field (or of a field and one nested in it) are caught."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        # Lower-cased path -> (who set it, the provider name it was set under).
        self.owners: dict[tuple[str, ...], tuple[str, str]] = {}

    def clash(self, path: tuple[str, ...]) -> tuple[str, str] | None:
        lowered = tuple(p.lower() for p in path)
        for other, owner in self.owners.items():
            shorter = min(len(other), len(lowered))
            if other[:shorter] == lowered[:shorter]:
                return owner
        if len(path) > 1:
            # A field of values (fill_if_empty) that holds something other than an object
            # where the path goes on.
            node: Any = self.values
            for part in path[:-1]:
                node = node.get(_same_key(node, part)) if isinstance(node, dict) else None
                if node is None:
                    return None
                if not isinstance(node, dict):
                    return (part, part)
        return None

    def put(self, path: tuple[str, ...], value: Any, owner: tuple[str, str]) -> str:
        """Sets the path (callers check clash first); returns its top-level key."""
        self.owners[tuple(p.lower() for p in path)] = owner
        node = self.values
        top = _same_key(node, path[0])
        for part in path[:-1]:
            node = node.setdefault(_same_key(node, part), {})
        node[_same_key(node, path[-1])] = value
        return top


def _defaults(configured: config_pb2.WriteConfigObject) -> dict[str, FieldDefault]:
    chosen: dict[str, tuple[str, FieldDefault]] = {}  # lower-cased field -> (spelling, default)
    for name, legacy in configured.selected_value_defaults.items():
        default = _legacy_default(legacy)
        if default is not None:
            chosen[name.lower()] = (name, default)
    # Settings after the legacy defaults: a setting's default wins for the same field.
    for name, setting in configured.selected_field_settings.items():
        kind = setting.default.WhichOneof("value") if setting.HasField("default") else None
        if kind is None:
            continue  # no value to write; a legacy default for the field still applies
        value: str | int | bool = getattr(setting.default, kind)
        on_update = {
            "": OnUpdate.ALWAYS,
            "always": OnUpdate.ALWAYS,
            "ifEmpty": OnUpdate.IF_EMPTY,
        }.get(setting.write_on_update, OnUpdate.NEVER)
        on_create = setting.write_on_create in ("", "always")
        chosen[name.lower()] = (name, FieldDefault(value, on_create, on_update))
    return dict(chosen.values())


def _legacy_default(value: struct_pb2.Value) -> FieldDefault | None:
    """A selectedValueDefaults entry: a bare string (written on create and update) or
    {value: string|number|boolean, applyOnUpdate: "always"|"never"}."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return FieldDefault(value.string_value, True, OnUpdate.ALWAYS)
    if kind != "struct_value":
        return None
    fields = value.struct_value.fields
    inner = fields.get("value")
    apply = fields.get("applyOnUpdate")
    apply_on_update = apply.string_value if apply is not None else "always"
    if inner is None or apply_on_update not in ("always", "never"):
        return None
    plain: str | int | float | bool
    match inner.WhichOneof("kind"):
        case "string_value":
            plain = inner.string_value
        case "bool_value":
            plain = inner.bool_value
        case "number_value" if math.isfinite(inner.number_value):
            plain = json_value(inner.number_value)
        case _:
            return None
    on_update = OnUpdate.ALWAYS if apply_on_update == "always" else OnUpdate.NEVER
    return FieldDefault(plain, True, on_update)


def _declared(revision: manifest_pb2.Integration, name: str) -> manifest_pb2.IntegrationWriteObject:
    writes = {o.object_name: o for o in revision.write.objects}
    if name in writes:
        return writes[name]
    mapped_reads = [o for o in revision.read.objects if o.map_to_name and o.map_to_name == name]
    for read in mapped_reads:
        declared = writes.get(read.object_name)
        if declared is not None and declared.inherit_mapping:
            return declared
    hint = ""
    if mapped_reads:
        hint = (
            f" ({name!r} is the mapped name of read object {mapped_reads[0].object_name!r}, "
            "but no write object of that name inherits its mapping)"
        )
    raise ObjectNotWritten(f"the integration writes no object {name!r}{hint}")


def _configured(content: config_pb2.ConfigContent | None, section: str) -> dict[str, Any]:
    if content is None:
        return {}
    return {(c.object_name or key): c for key, c in getattr(content, section).objects.items()}
