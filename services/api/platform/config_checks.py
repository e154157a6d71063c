"""Checks of an installation's config content against its integration's manifest.

Pure logic, no I/O: a ConfigContent (or the parts of it an update names) is checked
against the integration's latest revision and the project's destination names. Every
object it configures must be declared in the same section of the revision, destinations
must exist in the project, schedules and backfill periods follow the manifest's rules
(services/domain/manifest). Problems are collected, keyed by REST field names, so that one
refusal lists them all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from google.protobuf import struct_pb2

from services.domain.manifest import (
    MAPPED_NAME_RULE,
    NAME_RULE,
    READ_SCHEDULE_MIN_MINUTES,
    backfill_problems,
    is_field_name,
    is_mapped_name,
    schedule_problem,
    suggestion,
)

# The sections of a config that configure objects, as named in REST and in the protos.
SECTIONS = ("read", "write", "subscribe")


@dataclass
class ContentChecker:
    """Problems of a ConfigContent (or of the parts of it named) against the integration's
    latest revision, keyed by REST field names under `at`."""

    revision: manifest_pb2.Integration
    destinations: Collection[str]
    at: str
    problems: dict[str, str]

    def declared(self, section: str) -> set[str]:
        owner = getattr(self.revision, section)
        return {o.object_name for o in owner.objects}

    def check_provider(self, content: config_pb2.ConfigContent) -> None:
        if content.provider and content.provider != self.revision.provider:
            self.problems[f"{self.at}provider"] = (
                f"is {content.provider!r} but the integration's provider is "
                f"{self.revision.provider!r}"
            )

    def check_proxy(self, content: config_pb2.ConfigContent) -> None:
        if content.proxy.enabled and not self.revision.proxy.enabled:
            self.problems[f"{self.at}proxy.enabled"] = (
                "the integration does not enable proxy; add proxy.enabled to its manifest"
            )

    def check_object(self, section: str, key: str, value: Any) -> None:
        at = f"{self.at}{section}.objects.{key}"
        declared = self.declared(section)
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            self.problems[at] = (
                f"the integration's latest revision declares no {section} object {key!r}"
                f"{suggestion(key, declared)} (declared: {known})"
            )
            return
        if value.object_name != key:
            self.problems[f"{at}.objectName"] = (
                f"is required and must be the object's key {key!r}"
                if not value.object_name
                else f"is {value.object_name!r} but the object's key is {key!r}"
            )
        getattr(self, f"_check_{section}")(at, value)

    def check_section(self, content: config_pb2.ConfigContent, section: str) -> None:
        for key, value in getattr(content, section).objects.items():
            self.check_object(section, key, value)

    def check_all(self, content: config_pb2.ConfigContent) -> None:
        self.check_provider(content)
        for section in SECTIONS:
            self.check_section(content, section)
        self.check_proxy(content)

    def _destination(self, at: str, name: str, *, required: bool) -> None:
        if not name:
            if required:
                self.problems[at] = "is required: the name of a destination of the project"
        elif name not in self.destinations:
            self.problems[at] = (
                f"the project has no destination named {name!r}"
                f"{suggestion(name, self.destinations)}"
            )

    def _field_names(self, at: str, names: Iterable[str]) -> None:
        bad = [n for n in names if not is_field_name(n)]
        if bad:
            self.problems[at] = f"{', '.join(map(repr, bad))}: field names {NAME_RULE}"

    def _filters(self, at: str, filters: Iterable[config_pb2.ReadFilter]) -> None:
        seen: set[str] = set()
        for index, condition in enumerate(filters):
            here = f"{at}[{index}]"
            if not is_field_name(condition.field_name):
                self.problems[f"{here}.fieldName"] = f"is required; field names {NAME_RULE}"
            elif condition.field_name in seen:
                self.problems[f"{here}.fieldName"] = (
                    f"{condition.field_name!r} already has a condition (at most one per field)"
                )
            seen.add(condition.field_name)
            if condition.operator != "eq":
                self.problems[f"{here}.operator"] = f"must be 'eq' (found {condition.operator!r})"
            kind = condition.value.WhichOneof("kind")
            if kind not in ("string_value", "bool_value", "number_value"):
                self.problems[f"{here}.value"] = "must be a string, a boolean or a number"

    def _check_read(self, at: str, read: config_pb2.ReadConfigObject) -> None:
        if read.schedule:
            why = schedule_problem(read.schedule, READ_SCHEDULE_MIN_MINUTES)
            if why:
                self.problems[f"{at}.schedule"] = why
        self._destination(f"{at}.destination", read.destination, required=False)
        self._field_names(f"{at}.selectedFields", read.selected_fields)
        bad_names = [n for n in read.selected_field_mappings if not is_mapped_name(n)]
        if bad_names:
            self.problems[f"{at}.selectedFieldMappings"] = (
                f"{', '.join(map(repr, bad_names))}: names {MAPPED_NAME_RULE}"
            )
        self._field_names(f"{at}.selectedFieldMappings", read.selected_field_mappings.values())
        for field, mapping in read.selected_value_mappings.items():
            if any(v.WhichOneof("kind") != "string_value" for v in mapping.fields.values()):
                self.problems[f"{at}.selectedValueMappings.{field}"] = (
                    "must map each value to a string"
                )
        if read.selected_fields_auto not in ("", "all"):
            self.problems[f"{at}.selectedFieldsAuto"] = (
                f"must be 'all' or left out (found {read.selected_fields_auto!r})"
            )
        if read.HasField("backfill"):
            if not read.backfill.HasField("default_period"):
                self.problems[f"{at}.backfill.defaultPeriod"] = (
                    "is required: days (0 or more) or fullHistory: true"
                )
            else:
                for below, why in backfill_problems(read.backfill.default_period).items():
                    self.problems[
                        f"{at}.backfill.defaultPeriod" + (f".{below}" if below else "")
                    ] = why
            self._filters(f"{at}.backfill.fieldFilters", read.backfill.field_filters)
        self._filters(f"{at}.fieldFilters", read.field_filters)

    def _check_write(self, at: str, write: config_pb2.WriteConfigObject) -> None:
        if write.HasField("deletion_settings") and not write.deletion_settings.HasField("enabled"):
            self.problems[f"{at}.deletionSettings.enabled"] = "is required: true or false"
        for field, setting in write.selected_field_settings.items():
            here = f"{at}.selectedFieldSettings.{field}"
            if not is_field_name(field):
                self.problems[here] = f"field names {NAME_RULE}"
            if setting.write_on_create not in ("", "always", "never"):
                self.problems[f"{here}.writeOnCreate"] = (
                    f"must be 'always' or 'never' (found {setting.write_on_create!r})"
                )
            if setting.write_on_update not in ("", "always", "never", "ifEmpty"):
                self.problems[f"{here}.writeOnUpdate"] = (
                    f"must be 'always', 'never' or 'ifEmpty' (found {setting.write_on_update!r})"
                )
            if setting.HasField("default") and setting.default.WhichOneof("value") is None:
                self.problems[f"{here}.default"] = (
                    "must set one of stringValue, integerValue and booleanValue"
                )
        for field, default in write.selected_value_defaults.items():
            if not _legacy_default_ok(default):
                self.problems[f"{at}.selectedValueDefaults.{field}"] = (
                    "must be a string, or {value: string|integer|boolean, "
                    "applyOnUpdate: 'always'|'never'}"
                )

    def _check_subscribe(self, at: str, sub: config_pb2.SubscribeConfigObject) -> None:
        self._destination(f"{at}.destination", sub.destination, required=True)
        if not sub.HasField("inherit_fields_and_mappings"):
            self.problems[f"{at}.inheritFieldsAndMappings"] = "is required: true or false"
        for event in ("create_event", "update_event", "delete_event"):
            if sub.HasField(event) and getattr(sub, event).enabled not in ("always", "never"):
                name = event.split("_")[0] + "Event"
                self.problems[f"{at}.{name}.enabled"] = (
                    f"must be 'always' or 'never' (found {getattr(sub, event).enabled!r})"
                )
        update = sub.update_event
        if update.watch_fields_auto not in ("", "all"):
            self.problems[f"{at}.updateEvent.watchFieldsAuto"] = (
                f"must be 'all' or left out (found {update.watch_fields_auto!r})"
            )
        self._field_names(f"{at}.updateEvent.requiredWatchFields", update.required_watch_fields)
        if sub.provider_options.quota_optimization.enabled and (
            not update.required_watch_fields or update.watch_fields_auto == "all"
        ):
            self.problems[f"{at}.providerOptions.quotaOptimization.enabled"] = (
                "needs updateEvent.requiredWatchFields and excludes watchFieldsAuto 'all'"
            )


def _legacy_default_ok(value: struct_pb2.Value) -> bool:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return True
    if kind != "struct_value":
        return False
    fields = value.struct_value.fields
    inner = fields.get("value")
    apply = fields.get("applyOnUpdate")
    if set(fields) - {"value", "applyOnUpdate"} or inner is None:
        return False
    if inner.WhichOneof("kind") not in ("string_value", "number_value", "bool_value"):
        return False
    return apply is None or apply.string_value in ("always", "never")
