"""amp.yaml manifests: parsed into `ampmesh.manifest.v1.Manifest`, then validated.

Two steps, both naming every problem with the integration, the field path and the line:

- `load_manifest(text)` (or `parse_manifest`): the typed parse. Every key must be a field
  of the contract and every value of the field's type. It also keeps the line of every
  field, so that later checks can point at the line too.
- `validate_manifest(manifest, catalog, destinations, lines)`: what the contract's types
  cannot say. The provider exists in the catalog and the module is one of its modules;
  names of objects and fields are well formed and not repeated; the destinations named
  exist in the project; schedules are valid five-field cron expressions firing no more
  often than every 10 minutes (watchSchema: every hour); backfill periods are either a
  number of days or the full history. It is a pure function: the caller passes the
  project's destination names.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import functools
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ampmesh.manifest.v1 import manifest_pb2
from ampmesh.platform.v1 import providers_pb2
from croniter import CroniterError, croniter  # type: ignore[import-untyped]
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from services.domain.proto_yaml import (
    DocumentError,
    Issue,
    YamlLimits,
    load_yaml,
    parse_document,
)

SUPPORTED_SPEC_VERSIONS = ("1.0.0",)

# What an amp.yaml may be, checked before its structure is built. Real manifests are a few
# KB; one listing 100 objects with 40 fields each is about 150 KB and 15,000 values, and its
# deepest field (integrations[].subscribe.objects[].updateEvent.requiredWatchFields[]) is 8
# collections down; anchors and aliases, where used, share a field list or two. So each
# limit is far above any real manifest and far below what costs the api: ruamel reads about
# 100-300 KB a second in pure Python, and its scanner's cost grows with nesting (1,000
# levels of "[" take seconds, and recursion fails from about 300).
MANIFEST_LIMITS = YamlLimits(
    chars=256 * 1024,
    depth=32,
    values=50_000,
    # Every alias repeating a 256 KB field list four times over is still 1 MiB.
    value_chars=1024 * 1024,
    anchors=200,
    aliases=1_000,
)

# Reads fire at most every 10 minutes, schema checks at most hourly (the reference's limits).
READ_SCHEDULE_MIN_MINUTES = 10
WATCH_SCHEMA_MIN_MINUTES = 60

INTEGRATION_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
INTEGRATION_NAME_RULE = "must be 1-64 lowercase letters, digits, '-' or '_'"
DISPLAY_NAME_MAX = 100
# Provider object and field names are the provider's own, so almost anything goes; what
# never does is an empty name, whitespace around it, or control characters in it.
_NAME = re.compile(r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,254}[^\s\x00-\x1f\x7f])?$")
NAME_RULE = "must be 1-256 characters, without control characters or whitespace at either end"
# Nested fields: $['address']['city'].
_JSON_PATH = re.compile(r"^\$(?:\['[^'\]\x00-\x1f]+'\])+$")
JSON_PATH_RULE = "a nested field is written $['parent']['child']"
# The builder's names (mapToName) become JSON keys of delivered records.
_MAPPED_NAME = re.compile(r"^[^\s\x00-\x1f\x7f]{1,256}$")
MAPPED_NAME_RULE = "must be 1-256 characters without whitespace or control characters"


@dataclass(frozen=True)
class ManifestIssue:
    """A problem in a manifest, with the integration it belongs to where there is one."""

    integration: str | None
    path: str
    line: int | None
    message: str
    column: int | None = None

    @property
    def _line_column(self) -> str:
        if self.line is None:
            return ""
        return f"line {self.line}" + (f", column {self.column}" if self.column else "")

    def __str__(self) -> str:
        where = f"integration {self.integration!r}: " if self.integration else ""
        where += self.path or "manifest"
        if self.line is not None:
            where += f" ({self._line_column})"
        return f"{where}: {self.message}"

    @property
    def detail(self) -> str:
        """The message with where it is (line, integration), for an issue whose field is
        already named elsewhere (e.g. a REST problem's issues[].name)."""
        where = [self._line_column] if self.line is not None else []
        if self.integration:
            where.append(f"integration {self.integration!r}")
        return f"{self.message} ({', '.join(where)})" if where else self.message


class ManifestError(ValueError):
    """A manifest that cannot be deployed; `issues` lists every problem found."""

    def __init__(self, issues: list[ManifestIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


@dataclass(frozen=True)
class SourceLines:
    """The 1-based line of every field of a YAML document, by field path
    (`integrations[0].read.objects[1].schedule`, JSON names)."""

    lines: Mapping[str, int] = field(default_factory=dict)

    def line(self, path: str) -> int | None:
        """The line of path, or of its nearest ancestor written in the document (a field
        that is missing is reported at the line of the object that lacks it)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = _parent(path)
        return None


@dataclass(frozen=True)
class ParsedManifest:
    manifest: manifest_pb2.Manifest
    lines: SourceLines


_INTEGRATION_PATH = re.compile(r"^integrations\[(\d+)\]")
_LAST_SEGMENT = re.compile(r"(?:\.[^.\[\]]+|\[[^\]]*\])$")
_SNAKE = re.compile(r"_([a-z0-9])")


def _parent(path: str) -> str:
    return _LAST_SEGMENT.sub("", path) if _LAST_SEGMENT.search(path) else ""


def _integration_name(document: Any, path: str) -> str | None:
    match = _INTEGRATION_PATH.match(path)
    if not match or not isinstance(document, dict):
        return None
    integrations = document.get("integrations")
    index = int(match.group(1))
    if isinstance(integrations, list) and index < len(integrations):
        entry = integrations[index]
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            return str(entry["name"])
    return None


def _named(document: Any, issues: list[Issue]) -> list[ManifestIssue]:
    return [
        ManifestIssue(_integration_name(document, i.path), i.path, i.line, i.message, i.column)
        for i in issues
    ]


def _index_lines(node: Any, path: str, into: dict[str, int]) -> None:
    # The typed parse accepts proto field names too (object_name); paths use JSON names.
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            name = _SNAKE.sub(lambda m: m.group(1).upper(), str(key))
            child = f"{path}.{name}" if path else name
            with contextlib.suppress(KeyError, TypeError):
                into[child] = int(node.lc.key(key)[0]) + 1
            _index_lines(value, child, into)
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            child = f"{path}[{index}]"
            with contextlib.suppress(KeyError, IndexError, TypeError):
                into[child] = int(node.lc.item(index)[0]) + 1
            _index_lines(value, child, into)


def load_manifest(source_yaml: str) -> ParsedManifest:
    """Parse amp.yaml text into a Manifest and the line of each of its fields, or raise
    ManifestError naming every problem. Within MANIFEST_LIMITS; it may still take a second
    or more of CPU, so a server runs it off its event loop (services/api/manifest_parsing.py)."""
    try:
        document = load_yaml(source_yaml, MANIFEST_LIMITS)
    except DocumentError as error:
        raise ManifestError(_named(None, error.issues)) from None
    if document is None:
        raise ManifestError([ManifestIssue(None, "", None, "the manifest is empty")])
    try:
        manifest = parse_document(document, manifest_pb2.Manifest)
    except DocumentError as error:
        raise ManifestError(_named(document, error.issues)) from None
    problems = []
    if manifest.spec_version not in SUPPORTED_SPEC_VERSIONS:
        line = document.lc.key("specVersion")[0] + 1 if "specVersion" in document else None
        problems.append(
            ManifestIssue(
                None,
                "specVersion",
                line,
                f"unsupported spec version {manifest.spec_version!r}; "
                f"supported: {', '.join(SUPPORTED_SPEC_VERSIONS)}",
            )
        )
    if not manifest.integrations:
        problems.append(ManifestIssue(None, "integrations", None, "no integration is declared"))
    if problems:
        raise ManifestError(problems)
    lines: dict[str, int] = {}
    _index_lines(document, "", lines)
    return ParsedManifest(manifest, SourceLines(lines))


def parse_manifest(source_yaml: str) -> manifest_pb2.Manifest:
    """Parse amp.yaml text into a Manifest, or raise ManifestError naming every problem."""
    return load_manifest(source_yaml).manifest


# --- validation ------------------------------------------------------------------------


def validate_manifest(
    manifest: manifest_pb2.Manifest,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
    destinations: Collection[str],
    lines: SourceLines | None = None,
) -> list[ManifestIssue]:
    """Every problem of a parsed manifest that its types cannot express (see the module
    docstring); empty when it can be deployed. destinations: the names of the project's
    destinations."""
    lines = lines or SourceLines()
    issues: list[ManifestIssue] = []
    seen: dict[str, int] = {}
    for index, integration in enumerate(manifest.integrations):
        at = f"integrations[{index}]"
        issues += validate_integration(integration, catalog, destinations, at=at, lines=lines)
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
) -> list[ManifestIssue]:
    """The problems of one integration whose fields are at path `at` (e.g.
    "integrations[0]")."""
    checker = _IntegrationChecker(integration, catalog, destinations, at, lines or SourceLines())
    checker.check()
    return checker.issues


# Cached: checking one expression walks up to a day of fire times (about 10 ms), and a
# manifest repeats its few schedules over many objects.
@functools.lru_cache(maxsize=1024)
def schedule_problem(expression: str, min_minutes: int) -> str | None:
    """Why a cron expression cannot be a schedule, or None. It must have five fields
    (minute hour day-of-month month day-of-week) and no two consecutive fire times may be
    closer than min_minutes."""
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"{expression!r} is not a five-field cron expression "
            "(minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(expression)
    except (CroniterError, ValueError) as error:
        return f"{expression!r} is not a valid cron expression: {error}"
    if next(_fire_times(expression, _WINDOW_START), _WINDOW_END) >= _WINDOW_END:
        return f"{expression!r} never fires (no such date)"
    gap = _min_gap_minutes(fields)
    if gap is not None and gap < min_minutes:
        every = f"{min_minutes} minutes" if min_minutes < 60 else f"{min_minutes // 60} hour(s)"
        return (
            f"{expression!r} fires {gap} minute(s) apart at its closest; "
            f"schedules may fire at most every {every}"
        )
    return None


# A day at which no cron field is odd, and four years from it: every day-of-month, month
# and leap-day combination occurs in the window.
_WINDOW_START = datetime.datetime(2000, 1, 1)
_WINDOW_END = datetime.datetime(2004, 1, 1)


def _fire_times(expression: str, start: datetime.datetime) -> Iterator[datetime.datetime]:
    schedule = croniter(expression, start - datetime.timedelta(minutes=1))
    while True:
        try:
            yield schedule.get_next(datetime.datetime)
        except CroniterError:
            return  # no fire time within croniter's search horizon (e.g. 31 February)


def _min_gap_minutes(fields: list[str]) -> int | None:
    """The smallest gap in minutes between consecutive fire times, or None when the
    expression fires at most once in four years.

    Cron's times of day are the same on every day it fires, so consecutive fire times are
    either consecutive times of one day, or the last time of a day and the first of the
    next fire day. The times of day come from one day of `minute hour * * *`; only when
    the overnight gap is the smaller one does it matter whether two fire days are ever
    adjacent, which the days of `0 0 dom month dow` over a four-year window tell."""
    minute, hour, day_of_month, month, day_of_week = fields
    day_end = _WINDOW_START + datetime.timedelta(days=1)
    times: list[int] = []
    smallest: int | None = None
    for moment in _fire_times(f"{minute} {hour} * * *", _WINDOW_START):
        if moment >= day_end:
            break
        at = moment.hour * 60 + moment.minute
        if times:
            gap = at - times[-1]
            smallest = gap if smallest is None else min(smallest, gap)
        times.append(at)
    if not times:
        return None
    overnight = 24 * 60 - times[-1] + times[0]
    if smallest is not None and smallest <= overnight:
        return smallest
    previous: datetime.datetime | None = None
    for day in _fire_times(f"0 0 {day_of_month} {month} {day_of_week}", _WINDOW_START):
        if day >= _WINDOW_END:
            break
        if previous is not None and day - previous == datetime.timedelta(days=1):
            return overnight
        previous = day
    return smallest


def backfill_problems(period: Any) -> dict[str, str]:
    """Problems of a DefaultPeriod (the manifest's or a config's), keyed by the field path
    below it ("" for the period itself)."""
    has_days = period.HasField("days")
    full = period.HasField("full_history") and period.full_history
    if has_days and period.HasField("full_history"):
        return {"": "set either days or fullHistory, not both"}
    if has_days and period.days < 0:
        return {"days": f"must be 0 or more (found {period.days})"}
    if not has_days and not full:
        return {"": "set days (0 or more) or fullHistory: true"}
    return {}


def is_field_name(name: str) -> bool:
    """A provider field name: a plain name, or a nested field in JSONPath brackets."""
    if name.startswith("$"):
        return bool(_JSON_PATH.match(name))
    return bool(_NAME.match(name))


def is_object_name(name: str) -> bool:
    return bool(_NAME.match(name))


def is_mapped_name(name: str) -> bool:
    return bool(_MAPPED_NAME.match(name))


def suggestion(name: str, known: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the closest known name, or ""."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class _IntegrationChecker:
    def __init__(
        self,
        integration: manifest_pb2.Integration,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        destinations: Collection[str],
        at: str,
        lines: SourceLines,
    ) -> None:
        self.integration = integration
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
        self.check_provider()
        if integration.HasField("read"):
            self.check_read()
        if integration.HasField("write"):
            self.check_write()
        if integration.HasField("subscribe"):
            self.check_subscribe()
        if integration.HasField("watch_schema"):
            self.check_watch_schema()

    def check_provider(self) -> None:
        provider, module = self.integration.provider, self.integration.module
        if not provider:
            self.problem("provider", "is required: a provider name of the catalog")
            return
        info = self.catalog.get(provider)
        if info is None:
            self.problem(
                "provider",
                f"unknown provider {provider!r}{suggestion(provider, self.catalog)}",
            )
            return
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
