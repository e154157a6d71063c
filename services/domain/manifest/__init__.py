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

from services.domain.manifest.checks import validate_integration, validate_manifest
from services.domain.manifest.parse import (
    MANIFEST_LIMITS,
    SUPPORTED_SPEC_VERSIONS,
    ManifestError,
    ManifestIssue,
    ParsedManifest,
    SourceLines,
    load_manifest,
    parse_manifest,
)
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

__all__ = [
    "DISPLAY_NAME_MAX",
    "INTEGRATION_NAME",
    "INTEGRATION_NAME_RULE",
    "JSON_PATH_RULE",
    "MANIFEST_LIMITS",
    "MAPPED_NAME_RULE",
    "NAME_RULE",
    "READ_SCHEDULE_MIN_MINUTES",
    "SUPPORTED_SPEC_VERSIONS",
    "WATCH_SCHEMA_MIN_MINUTES",
    "ManifestError",
    "ManifestIssue",
    "ParsedManifest",
    "SourceLines",
    "backfill_problems",
    "is_field_name",
    "is_mapped_name",
    "is_object_name",
    "load_manifest",
    "parse_manifest",
    "schedule_problem",
    "suggestion",
    "validate_integration",
    "validate_manifest",
]
