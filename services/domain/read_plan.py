"""A read resolved once: how one object of one installation is read, from the integration's
manifest (the revision the config was saved against) and the installation's config.

The api resolves plans to validate a read and to start its workflows, and carries the
plan in the workflows' inputs (ampmesh.workflows.v1.ReadPlan); the temporal activities
read pages from it instead of loading the manifest and the config again. Pure: no I/O,
so every rule below is unit-tested (tests/domain/test_read_plan.py). What is not the
manifest's or the config's to say (the destination's id, the config's row id) the
caller passes in.

The rules, as the reference states them:
- the schedule is the config's cron, else the manifest's;
- the backfill period is the config's `backfill.defaultPeriod`, else the manifest's; a
  period of neither full history nor days > 0 reads no history;
- the destination is the config's, else the manifest's;
- the page size is the manifest's `delivery.pageSize` (0: the connector's default);
- fields: the config's selected fields and field mappings, the manifest's required
  fields (renamed when they carry a mapToName), and its optional fields renamed once the
  config selects them; a mapped field is delivered only under its builder name; value
  mappings are kept in the reading direction (provider value -> delivered value).
"""

from __future__ import annotations

from collections.abc import Mapping

from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.workflows.v1.read_plan_pb2 import ReadPlan, ReadSelection

__all__ = [
    "ObjectNotRead",
    "ReadPlan",
    "configured_plans",
    "find_plan",
    "read_plan",
    "selection",
]


class ObjectNotRead(LookupError):
    """The integration's revision declares no such read object."""


def read_plan(
    revision: manifest_pb2.Integration,
    content: config_pb2.ConfigContent | None,
    object_name: str,
    *,
    config_id: str = "",
    destination_ids: Mapping[str, str] | None = None,
) -> ReadPlan:
    """The plan of one object the revision declares (the config need not configure it:
    an unconfigured object reads with the manifest's settings alone). Raises
    ObjectNotRead when the revision declares no object of that name."""
    declared = _declared(revision).get(object_name)
    if declared is None:
        raise ObjectNotRead(f"the integration reads no object {object_name!r}")
    configured = _configured(content).get(object_name)
    return _plan(revision, object_name, declared, configured, config_id, destination_ids)


def configured_plans(
    revision: manifest_pb2.Integration,
    content: config_pb2.ConfigContent,
    *,
    config_id: str = "",
    destination_ids: Mapping[str, str] | None = None,
) -> dict[str, ReadPlan]:
    """The plans of every object the config configures, by provider object name; one
    the revision does not declare (left disabled by a destructive deploy) has a plan
    with `declared` false, which reads nothing."""
    declared = _declared(revision)
    return {
        name: _plan(revision, name, declared.get(name), configured, config_id, destination_ids)
        for name, configured in _configured(content).items()
    }


def find_plan(plans: Mapping[str, ReadPlan], name: str) -> ReadPlan | None:
    """The plan of the object named by its provider name or its mapped name."""
    if name in plans:
        return plans[name]
    return next((p for p in plans.values() if p.mapped_name and p.mapped_name == name), None)


def selection(
    configured: config_pb2.ReadConfigObject,
    declared: manifest_pb2.IntegrationReadObject | None,
) -> ReadSelection:
    """Which fields to request and how to deliver them (ReadSelection's fields say
    what each part is). Required fields are always read; optional ones when the
    installation selects them. Nested fields (JSONPath brackets) are requested as
    written."""
    requested: dict[str, str] = {}  # lower-cased -> spelling, in first-seen order
    selected: set[str] = set()
    mappings: dict[str, str] = {}

    def want(name: str) -> str:
        lowered = name.lower()
        requested.setdefault(lowered, name)
        return lowered

    for name, on in configured.selected_fields.items():
        if on:
            selected.add(want(name))
    for builder, provider_field in configured.selected_field_mappings.items():
        if provider_field:
            mappings[builder] = want(provider_field)
    if declared is not None:
        for entry in declared.required_fields:
            if entry.field_name and entry.map_to_name:
                mappings.setdefault(entry.map_to_name, want(entry.field_name))
            elif entry.field_name:
                selected.add(want(entry.field_name))
        for entry in declared.optional_fields:
            # An optional field the manifest renames is delivered renamed once selected.
            lowered = entry.field_name.lower()
            if entry.field_name and entry.map_to_name and lowered in selected:
                mappings.setdefault(entry.map_to_name, lowered)
    mapped = set(mappings.values())
    result = ReadSelection(
        all_fields=configured.selected_fields_auto == "all",
        requested_fields=list(requested.values()),
    )
    if not result.all_fields:
        result.fields.extend(sorted(selected - mapped))
    for builder, provider_field in mappings.items():
        result.mappings.add(map_to_name=builder, field_name=provider_field)
    for key, struct in configured.selected_value_mappings.items():
        # {delivered: provider} in the config, string values only, read in reverse.
        values = {
            value.string_value: delivered
            for delivered, value in struct.fields.items()
            if value.WhichOneof("kind") == "string_value"
        }
        if values:
            field = key if key in mappings else key.lower()
            result.value_mappings.add(field=field, values=values)
    return result


def _plan(
    revision: manifest_pb2.Integration,
    name: str,
    declared: manifest_pb2.IntegrationReadObject | None,
    configured: config_pb2.ReadConfigObject | None,
    config_id: str,
    destination_ids: Mapping[str, str] | None,
) -> ReadPlan:
    configured = configured or config_pb2.ReadConfigObject(object_name=name)
    plan = ReadPlan(
        config_id=config_id,
        integration_name=revision.name,
        object_name=name,
        mapped_name=declared.map_to_name if declared is not None else "",
        declared=declared is not None,
        disabled=configured.HasField("disabled") and configured.disabled,
        schedule=configured.schedule or (declared.schedule if declared is not None else ""),
        page_size=declared.delivery.page_size if declared is not None else 0,
        destination_name=configured.destination
        or (declared.destination if declared is not None else ""),
        selection=selection(configured, declared),
    )
    period: manifest_pb2.DefaultPeriod | None = None
    if configured.HasField("backfill"):
        period = configured.backfill.default_period
    elif declared is not None and declared.HasField("backfill"):
        period = declared.backfill.default_period
    if period is not None and (period.full_history or period.days > 0):
        plan.backfill.CopyFrom(period)
    if destination_ids is not None:
        plan.destination_id = destination_ids.get(plan.destination_name, "")
    return plan


def _declared(revision: manifest_pb2.Integration) -> dict[str, manifest_pb2.IntegrationReadObject]:
    return {o.object_name: o for o in revision.read.objects}


def _configured(
    content: config_pb2.ConfigContent | None,
) -> dict[str, config_pb2.ReadConfigObject]:
    if content is None:
        return {}
    return {(c.object_name or key): c for key, c in content.read.objects.items()}
