"""What a record looks like when ampmesh hands it over: the reference's ResultEntry, in
read deliveries (services/temporal/reads) and in search answers (services/api/search).

    {"fields": {...}, "mappedFields": {...}, "raw": {...}, "id": "...", "deleted": true}

- `fields`: the selected provider fields that are not mapped, keyed by lower-cased
  provider name (all of the record's fields when the installation selects "all");
- `mappedFields`: builder name -> value of the provider field mapped to it (from the
  manifest's fieldName/mapToName pairs and the installation's selected_field_mappings);
  a mapped field is not repeated in `fields`, as the reference says fields holds only
  unmapped ones;
- `raw`: the record exactly as the provider returned it;
- `id`: the provider's record id (reads; the search answer has no place for it);
- `deleted`: only on a record the provider returned as deleted (a read's window holds
  the records deleted in it: HubSpot's archived ones, Salesforce's IsDeleted rows), which
  is otherwise shaped like any other from what the provider still returns; absent on live
  records, as the proto's JSON mapping leaves a false bool out.

Value mappings (selectedValueMappings): per field, delivered value -> provider value
(the reference: "The key is the value delivered to the webhook, the value is the value
coming from the provider API"). Reading applies them in reverse, to string values only,
and leaves values without a mapping as they are. They apply where the field is
delivered: under its builder name in `mappedFields` (the usual case: value mappings come
with dynamic field mappings) or, when the key names an unmapped provider field, in
`fields`. `raw` is never changed.

Which fields are requested, delivered and mapped is the read plan's (ReadSelection,
resolved by services/domain/read_plan.py); plan_selection turns it into the Selection
rendering uses (frozen sets, looked up per record). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.workflows.v1.read_plan_pb2 import ReadSelection
from google.protobuf import json_format

from services.domain import read_plan
from services.domain.connectors.base import Connector


@dataclass(frozen=True)
class Selection:
    """What to ask the provider for and how to render each record."""

    # Lower-cased provider fields delivered in `fields`; None delivers every field.
    fields: frozenset[str] | None
    # (builder name, lower-cased provider field) pairs delivered in `mappedFields`.
    mappings: tuple[tuple[str, str], ...] = ()
    # Field name (builder or lower-cased provider) -> {provider value: delivered value}.
    value_mappings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Provider field names to request, in the installation's spelling, each once.
    requested: tuple[str, ...] = ()
    # The provider fields of `mappings`, kept out of `fields`.
    mapped_sources: frozenset[str] = frozenset()

    def provider_fields(self) -> list[str]:
        """The fields to ask the provider for; empty asks for the connector's default set
        (what "all" fields means without the provider's field metadata)."""
        return [] if self.fields is None else list(self.requested)


def plan_selection(planned: ReadSelection) -> Selection:
    """The Selection of a read plan's (services/domain/read_plan.py resolves it)."""
    mappings = tuple((m.map_to_name, m.field_name) for m in planned.mappings)
    return Selection(
        fields=None if planned.all_fields else frozenset(planned.fields),
        mappings=mappings,
        value_mappings={v.field: dict(v.values) for v in planned.value_mappings},
        requested=tuple(planned.requested_fields),
        mapped_sources=frozenset(source for _, source in mappings),
    )


def selection_for(
    read_object: config_pb2.ReadConfigObject,
    manifest_object: manifest_pb2.IntegrationReadObject | Mapping[str, Any] | None,
) -> Selection:
    """The Selection of one installation's read object, from the config's object and the
    revision's (typed, or in its JSON form: camelCase or snake_case keys)."""
    if manifest_object is not None and not isinstance(
        manifest_object, manifest_pb2.IntegrationReadObject
    ):
        manifest_object = json_format.ParseDict(
            dict(manifest_object),
            manifest_pb2.IntegrationReadObject(),
            ignore_unknown_fields=True,
        )
    return plan_selection(read_plan.selection(read_object, manifest_object))


def render_record(connector: Connector, raw: dict[str, Any], selection: Selection) -> bytes:
    """One ResultEntry as JSON bytes."""
    return orjson.dumps(result_entry(connector, raw, selection))


def result_entry(connector: Connector, raw: dict[str, Any], selection: Selection) -> dict[str, Any]:
    """One ResultEntry as JSON-like data (`fields` may be the record's own mapping when
    nothing is taken out of it or changed: serialize it, do not modify it)."""
    values = connector.field_values(raw)
    mapped_sources = selection.mapped_sources
    fields: dict[str, Any]
    if selection.fields is None:
        # Serialized, not kept: no copy unless something is taken out or changed.
        if mapped_sources or selection.value_mappings:
            fields = {k: v for k, v in values.items() if k not in mapped_sources}
        else:
            fields = values
    else:
        wanted = selection.fields
        fields = {k: v for k, v in values.items() if k in wanted}
    mapped = {builder: values[source] for builder, source in selection.mappings if source in values}
    if selection.value_mappings:
        _map_values(fields, selection.value_mappings)
        _map_values(mapped, selection.value_mappings)
    entry: dict[str, Any] = {
        "fields": fields,
        "mappedFields": mapped,
        "raw": raw,
        "id": connector.record_id(raw),
    }
    if connector.deleted(raw):
        entry["deleted"] = True
    return entry


def _map_values(values: dict[str, Any], mappings: Mapping[str, Mapping[str, Any]]) -> None:
    for name, mapping in mappings.items():
        value = values.get(name)
        if isinstance(value, str) and value in mapping:
            values[name] = mapping[value]
