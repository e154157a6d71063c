"""What an installation's config asks the provider for (pure, no I/O): per subscribe
object, which events are enabled and which fields an update must touch, and from that the
provider-side state: HubSpot's (eventType, propertyName) subscriptions, Salesforce's
change event entities.

An event is enabled by the config's `enabled: always`, else by the manifest's (the
config's field is required, so the manifest speaks only for configs saved before it).
Watched fields are the config's and the manifest's `requiredWatchFields`, and with
`watchFieldsAuto` `all` (or the manifest's `selected`) the fields the object's read asks
for (services/domain/read_plan.py: the installation's selection, the manifest's
required fields). HubSpot names properties in lower case, so fields are lower-cased.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ampmesh.manifest.v1 import config_pb2, manifest_pb2

from services.domain import read_plan, subscribe_names

ALWAYS = "always"
_AUTO = ("all", "selected")


@dataclass(frozen=True)
class WantedObject:
    """The events of one provider object an installation subscribes to."""

    object_name: str
    create: bool
    update: bool
    delete: bool
    watch_fields: tuple[str, ...]
    other_events: tuple[str, ...]

    @property
    def any(self) -> bool:
        return self.create or self.update or self.delete or bool(self.other_events)


def _on(configured: str, declared: str | None) -> bool:
    return (configured or declared or "") == ALWAYS


def _declared(
    event: manifest_pb2.CreateEvent | manifest_pb2.UpdateEvent | manifest_pb2.DeleteEvent,
) -> str | None:
    return event.enabled if event.HasField("enabled") else None


def wanted_objects(
    revision: manifest_pb2.Integration, content: config_pb2.ConfigContent
) -> dict[str, WantedObject]:
    """Every subscribe object of the config that asks for some event, by provider name."""
    declared = {o.object_name: o for o in revision.subscribe.objects}
    wanted: dict[str, WantedObject] = {}
    for key, configured in content.subscribe.objects.items():
        name = configured.object_name or key
        manifest = declared.get(name, manifest_pb2.IntegrationSubscribeObject(object_name=name))
        update = _on(configured.update_event.enabled, _declared(manifest.update_event))
        watch: dict[str, None] = {}
        if update:
            for field in (
                *configured.update_event.required_watch_fields,
                *manifest.update_event.required_watch_fields,
            ):
                watch.setdefault(field.lower(), None)
            auto = (
                configured.update_event.watch_fields_auto or manifest.update_event.watch_fields_auto
            )
            if auto in _AUTO:
                for field in _read_fields(revision, content, name):
                    watch.setdefault(field.lower(), None)
        found = WantedObject(
            object_name=name,
            create=_on(
                configured.create_event.enabled,
                manifest.create_event.enabled
                if manifest.create_event.HasField("enabled")
                else None,
            ),
            update=update,
            delete=_on(
                configured.delete_event.enabled,
                manifest.delete_event.enabled
                if manifest.delete_event.HasField("enabled")
                else None,
            ),
            watch_fields=tuple(watch),
            other_events=tuple(dict.fromkeys((*configured.other_events, *manifest.other_events))),
        )
        if found.any:
            wanted[name] = found
    return wanted


def _read_fields(
    revision: manifest_pb2.Integration, content: config_pb2.ConfigContent, name: str
) -> list[str]:
    try:
        plan = read_plan.read_plan(revision, content, name)
    except read_plan.ObjectNotRead:
        return []
    return list(plan.selection.requested_fields)


def hubspot_keys(wanted: Mapping[str, WantedObject]) -> dict[str, set[tuple[str, str]]]:
    """Per object, the app-level subscriptions it needs: (eventType, propertyName).
    ValueError naming the object when HubSpot has no webhooks for it, or an update
    event watches no field (HubSpot subscribes to property changes one property at a
    time)."""
    keys: dict[str, set[tuple[str, str]]] = {}
    for name, want in wanted.items():
        if subscribe_names.hubspot_event_type(name, subscribe_names.CREATE) is None:
            known = ", ".join(sorted(subscribe_names.HUBSPOT_EVENT_OBJECTS))
            raise ValueError(
                f"subscribe.objects.{name}: HubSpot sends change events for {known} only"
            )
        needed: set[tuple[str, str]] = set()
        for enabled, kind in (
            (want.create, subscribe_names.CREATE),
            (want.delete, subscribe_names.DELETE),
        ):
            event_type = subscribe_names.hubspot_event_type(name, kind)
            if enabled and event_type:
                needed.add((event_type, ""))
        if want.update:
            if not want.watch_fields:
                raise ValueError(
                    f"subscribe.objects.{name}.updateEvent watches no field: name "
                    "requiredWatchFields, or select the read's fields with watchFieldsAuto"
                )
            change = subscribe_names.hubspot_event_type(name, subscribe_names.UPDATE)
            needed |= {(str(change), field) for field in want.watch_fields}
        needed |= {(event, "") for event in want.other_events}
        keys[name] = needed
    return keys


def salesforce_entities(wanted: Mapping[str, WantedObject]) -> dict[str, str]:
    """Per object, the change event entity its channel member selects."""
    return {name: subscribe_names.salesforce_channel_entity(name) for name in wanted}
