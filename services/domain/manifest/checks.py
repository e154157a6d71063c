"""A parsed manifest's checks beyond its types (`validate_manifest`, `validate_integration`):
the provider and module exist in the catalog, ampmesh has a connector for every action a
section asks of the provider (services/domain/catalog/actions.py: a read, write or
subscribe section it cannot serve is refused here, not left to fail when it is due), names
are well formed and not repeated, the destinations named exist in the project, schedules
and backfill periods follow the rules (rules.py). Pure: the caller passes the catalog and
the project's destination names.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ampmesh.manifest.v1 import manifest_pb2
from ampmesh.platform.v1 import providers_pb2

from services.domain.catalog.actions import (
    MANIFEST_SECTIONS,
    SUPPORTED_ACTIONS,
    Action,
    unsupported_reason,
)
from services.domain.manifest.parse import ManifestIssue, SourceLines
from services.domain.manifest.rules import (
    DISPLAY_NAME_MAX,
    INTEGRATION_NAME,
    INTEGRATION_NAME_RULE,
    JSON_PATH_RULE,
    MAPPED_NAME_RULE,
    NAME_RULE,
    READ_SCHEDULE_MIN_MINUTES,
    WATCH_SCHEMA_MIN_MINUTES,
    backfill_problems,
    is_field_name,
    is_mapped_name,
    is_object_name,
    schedule_problem,
    suggestion,
)
from services.domain.subscribe_names import HUBSPOT_EVENT_OBJECTS


def validate_manifest(
    manifest: manifest_pb2.Manifest,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
    destinations: Collection[str],
    lines: SourceLines | None = None,
    actions: Mapping[str, Collection[Action]] = SUPPORTED_ACTIONS,
) -> list[ManifestIssue]:
    """Every problem of a parsed manifest that its types cannot express (see the module
    docstring); empty when it can be deployed. destinations: the names of the project's
    destinations; actions: what ampmesh supports per provider (the declaration in
    services/domain/catalog/actions.py unless a test checks the other rules alone)."""
    lines = lines or SourceLines()
    issues: list[ManifestIssue] = []
    seen: dict[str, int] = {}
    for index, integration in enumerate(manifest.integrations):
        at = f"integrations[{index}]"
        issues += validate_integration(
            integration, catalog, destinations, at=at, lines=lines, actions=actions
        )
        if integration.name and integration.name in seen:
            issues.append(
                ManifestIssue(
                    integration.name,
                    f"{at}.name",
                    lines.line(f"{at}.name"),
                    f"integration {integration.name!r} is declared twice (also "
                    f"integrations[{seen[integration.name]}])",
                )
            )
        seen.setdefault(integration.name, index)
    return issues


def validate_integration(
    integration: manifest_pb2.Integration,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
    destinations: Collection[str],
    *,
    at: str,
    lines: SourceLines | None = None,
    actions: Mapping[str, Collection[Action]] = SUPPORTED_ACTIONS,
) -> list[ManifestIssue]:
    """The problems of one integration whose fields are at path `at` (e.g.
    "integrations[0]")."""
    checker = _IntegrationChecker(
        integration, catalog, destinations, at, lines or SourceLines(), actions
    )
    checker.check()
    return checker.issues


class _IntegrationChecker:
    def __init__(
        self,
        integration: manifest_pb2.Integration,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        destinations: Collection[str],
        at: str,
        lines: SourceLines,
        actions: Mapping[str, Collection[Action]],
    ) -> None:
        self.integration = integration
        self.actions = actions
        self.catalog = catalog
        self.destinations = destinations
        self.at = at
        self.lines = lines
        self.issues: list[ManifestIssue] = []

    def problem(self, path: str, message: str) -> None:
        full = f"{self.at}.{path}" if path else self.at
        self.issues.append(
            ManifestIssue(self.integration.name or None, full, self.lines.line(full), message)
        )

    def check(self) -> None:
        integration = self.integration
        if not INTEGRATION_NAME.match(integration.name):
            self.problem("name", "is required" if not integration.name else INTEGRATION_NAME_RULE)
        if len(integration.display_name) > DISPLAY_NAME_MAX:
            self.problem("displayName", f"must be at most {DISPLAY_NAME_MAX} characters")
        if self.check_provider():
            self.check_actions()
        if integration.HasField("read"):
            self.check_read()
        if integration.HasField("write"):
            self.check_write()
        if integration.HasField("subscribe"):
            self.check_subscribe()
        if integration.HasField("watch_schema"):
            self.check_watch_schema()

    def check_provider(self) -> bool:
        """Whether the provider is one of the catalog's (its module checked too)."""
        provider, module = self.integration.provider, self.integration.module
        if not provider:
            self.problem("provider", "is required: a provider name of the catalog")
            return False
        info = self.catalog.get(provider)
        if info is None:
            self.problem(
                "provider",
                f"unknown provider {provider!r}{suggestion(provider, self.catalog)}",
            )
            return False
        modules = set(info.modules)
        if info.default_module:
            modules.add(info.default_module)
        if module and module not in modules:
            known = (
                f"known modules: {', '.join(sorted(modules))}"
                if modules
                else "it has no modules; leave module out"
            )
            self.problem(
                "module",
                f"provider {provider!r} has no module {module!r}{suggestion(module, modules)} "
                f"({known})",
            )
        return True

    def check_actions(self) -> None:
        """Each section that asks the provider for an action ampmesh has no connector
        for is refused at the section's line (an empty section asks for nothing)."""
        provider = self.integration.provider
        for section, action in MANIFEST_SECTIONS.items():
            if not self.integration.HasField(section):
                continue
            if not getattr(self.integration, section).objects:
                continue
            if action in self.actions.get(provider, ()):
                continue
            self.problem(
                section,
                f"{unsupported_reason(provider, action, self.actions)}: "
                f"remove the {section} section",
            )

    def check_destination(self, path: str, name: str, required: bool = True) -> None:
        if not name:
            if required:
                self.problem(path, "is required: the name of a destination of the project")
            return
        if name not in self.destinations:
            self.problem(
                path,
                f"the project has no destination named {name!r}"
                f"{suggestion(name, self.destinations)}; create it first",
            )

    def check_object_names(self, section: str, names: list[str]) -> dict[str, int]:
        """Each objectName of section well formed and not repeated; the first index of
        each name."""
        first: dict[str, int] = {}
        for index, name in enumerate(names):
            path = f"{section}.objects[{index}].objectName"
            if not name:
                self.problem(path, "is required")
            elif not is_object_name(name):
                self.problem(path, f"{name!r} {NAME_RULE}")
            elif name in first:
                self.problem(
                    path,
                    f"object {name!r} is listed twice in {section} (also "
                    f"{section}.objects[{first[name]}])",
                )
            first.setdefault(name, index)
        return first

    def check_read(self) -> None:
        objects = self.integration.read.objects
        self.check_object_names("read", [o.object_name for o in objects])
        for index, read in enumerate(objects):
            at = f"read.objects[{index}]"
            self.check_destination(f"{at}.destination", read.destination)
            if read.schedule:
                why = schedule_problem(read.schedule, READ_SCHEDULE_MIN_MINUTES)
                if why:
                    self.problem(f"{at}.schedule", why)
            if read.map_to_name and not is_mapped_name(read.map_to_name):
                self.problem(f"{at}.mapToName", MAPPED_NAME_RULE)
            self.check_fields(at, read)
            if read.optional_fields_auto not in ("", "all"):
                self.problem(
                    f"{at}.optionalFieldsAuto",
                    f"must be 'all' or left out (found {read.optional_fields_auto!r})",
                )
            if read.enabled not in ("", "always"):
                self.problem(
                    f"{at}.enabled", f"must be 'always' or left out (found {read.enabled!r})"
                )
            if read.HasField("backfill"):
                self.check_backfill(f"{at}.backfill", read.backfill)
            if read.HasField("delivery"):
                delivery = read.delivery
                if delivery.mode not in ("", "auto", "onRequest"):
                    self.problem(
                        f"{at}.delivery.mode",
                        f"must be 'auto' or 'onRequest' (found {delivery.mode!r})",
                    )
                if delivery.HasField("page_size") and not 50 <= delivery.page_size <= 500:
                    self.problem(
                        f"{at}.delivery.pageSize",
                        f"must be between 50 and 500 (found {delivery.page_size})",
                    )

    def check_backfill(self, at: str, backfill: manifest_pb2.Backfill) -> None:
        if not backfill.HasField("default_period"):
            self.problem(at, "needs defaultPeriod: days (0 or more) or fullHistory: true")
            return
        for below, why in backfill_problems(backfill.default_period).items():
            self.problem(f"{at}.defaultPeriod" + (f".{below}" if below else ""), why)

    def check_fields(self, at: str, read: manifest_pb2.IntegrationReadObject) -> None:
        fields: dict[str, str] = {}  # provider field -> where it is first listed
        delivered: dict[str, str] = {}  # name it is delivered as -> where
        for kind in ("requiredFields", "optionalFields"):
            entries = read.required_fields if kind == "requiredFields" else read.optional_fields
            for index, entry in enumerate(entries):
                path = f"{at}.{kind}[{index}]"
                here = f"{kind}[{index}]"
                repeated = False
                if entry.field_name:
                    if not is_field_name(entry.field_name):
                        rule = JSON_PATH_RULE if entry.field_name.startswith("$") else NAME_RULE
                        self.problem(f"{path}.fieldName", f"{entry.field_name!r}: {rule}")
                    elif entry.field_name in fields:
                        repeated = True
                        self.problem(
                            f"{path}.fieldName",
                            f"field {entry.field_name!r} is already listed as "
                            f"{fields[entry.field_name]}",
                        )
                    fields.setdefault(entry.field_name, here)
                    for extra in ("prompt", "default"):
                        if entry.HasField(extra):
                            self.problem(
                                f"{path}.{extra}",
                                f"{extra} is only for a mapping the customer completes "
                                "(an entry without fieldName)",
                            )
                elif not entry.map_to_name:
                    self.problem(
                        path,
                        "needs fieldName (a provider field) or mapToName (a field the "
                        "customer picks at install time)",
                    )
                    continue
                elif entry.HasField("default") and not is_field_name(entry.default):
                    self.problem(f"{path}.default", f"{entry.default!r}: {NAME_RULE}")
                if entry.map_to_name and not is_mapped_name(entry.map_to_name):
                    self.problem(f"{path}.mapToName", MAPPED_NAME_RULE)
                    continue
                name = entry.map_to_name or entry.field_name
                if name in delivered and not repeated:
                    self.problem(
                        f"{path}.mapToName" if entry.map_to_name else f"{path}.fieldName",
                        f"records would carry {name!r} twice: it is already the name of "
                        f"{delivered[name]}",
                    )
                delivered.setdefault(name, here)

    def check_write(self) -> None:
        self.check_object_names("write", [o.object_name for o in self.integration.write.objects])

    def check_subscribe(self) -> None:
        integration = self.integration
        objects = integration.subscribe.objects
        self.check_object_names("subscribe", [o.object_name for o in objects])
        read_names = {o.object_name for o in integration.read.objects}
        if objects and not integration.HasField("read"):
            self.problem("subscribe", "needs a read section declaring the objects subscribed to")
        for index, sub in enumerate(objects):
            at = f"subscribe.objects[{index}]"
            self.check_destination(f"{at}.destination", sub.destination)
            if (
                integration.provider == "hubspot"
                and sub.object_name
                and sub.object_name not in HUBSPOT_EVENT_OBJECTS
            ):
                self.problem(
                    f"{at}.objectName",
                    f"HubSpot sends webhooks only for {', '.join(HUBSPOT_EVENT_OBJECTS)}; "
                    f"{sub.object_name!r} has none",
                )
            if integration.HasField("read") and sub.object_name not in read_names:
                self.problem(
                    f"{at}.objectName",
                    f"object {sub.object_name!r} must also be declared in read.objects",
                )
            uses_record_events = any(
                sub.HasField(e) for e in ("create_event", "update_event", "delete_event")
            )
            if uses_record_events and not sub.inherit_fields_and_mapping:
                self.problem(
                    f"{at}.inheritFieldsAndMapping",
                    "must be true to receive create, update or delete events",
                )
            for event in ("createEvent", "updateEvent", "deleteEvent", "associationChangeEvent"):
                message = getattr(sub, _SNAKE_OF[event])
                if sub.HasField(_SNAKE_OF[event]) and message.enabled not in ("", "always"):
                    self.problem(
                        f"{at}.{event}.enabled",
                        f"must be 'always' or left out (found {message.enabled!r})",
                    )
            update = sub.update_event
            if update.watch_fields_auto not in ("", "all", "selected"):
                self.problem(
                    f"{at}.updateEvent.watchFieldsAuto",
                    f"must be 'all' or 'selected' (found {update.watch_fields_auto!r})",
                )
            if update.watch_fields_auto and update.required_watch_fields:
                self.problem(
                    f"{at}.updateEvent.requiredWatchFields",
                    "use either watchFieldsAuto or requiredWatchFields, not both",
                )
            for position, name in enumerate(update.required_watch_fields):
                if not is_field_name(name):
                    self.problem(
                        f"{at}.updateEvent.requiredWatchFields[{position}]",
                        f"{name!r}: {NAME_RULE}",
                    )
            for position, name in enumerate(sub.other_events):
                if not is_object_name(name):
                    self.problem(f"{at}.otherEvents[{position}]", f"{name!r}: {NAME_RULE}")

    def check_watch_schema(self) -> None:
        watch = self.integration.watch_schema
        self.check_destination("watchSchema.destination", watch.destination)
        if watch.schedule:
            why = schedule_problem(watch.schedule, WATCH_SCHEMA_MIN_MINUTES)
            if why:
                self.problem("watchSchema.schedule", why)
        if not watch.HasField("all_objects"):
            self.problem("watchSchema.allObjects", "is required: the schema changes to watch")
            return
        for event in ("fieldCreated", "fieldDeleted", "fieldChanged"):
            if watch.all_objects.HasField(_SNAKE_OF[event]):
                enabled = getattr(watch.all_objects, _SNAKE_OF[event]).enabled
                if enabled != "always":
                    self.problem(
                        f"watchSchema.allObjects.{event}.enabled",
                        f"must be 'always' (found {enabled!r})",
                    )


_SNAKE_OF = {
    "createEvent": "create_event",
    "updateEvent": "update_event",
    "deleteEvent": "delete_event",
    "associationChangeEvent": "association_change_event",
    "fieldCreated": "field_created",
    "fieldDeleted": "field_deleted",
    "fieldChanged": "field_changed",
}
