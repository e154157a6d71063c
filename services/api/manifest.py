"""amp.yaml manifests parsed into `ampmesh.manifest.v1.Manifest`.

This is the typed parse only: every key must be a field of the contract and every value
of the field's type, and each problem names the integration, the field path and the
line. Checks that need the project's state (the provider exists, the destination exists,
schedules are valid and not too frequent) belong to the deploy RPCs (issue #4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ampmesh.manifest.v1 import manifest_pb2

from services.runtime.proto_yaml import DocumentError, Issue, load_yaml, parse_document

SUPPORTED_SPEC_VERSIONS = ("1.0.0",)


@dataclass(frozen=True)
class ManifestIssue:
    """A problem in a manifest, with the integration it belongs to where there is one."""

    integration: str | None
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"integration {self.integration!r}: " if self.integration else ""
        where += self.path or "manifest"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class ManifestError(ValueError):
    """A manifest that cannot be deployed; `issues` lists every problem found."""

    def __init__(self, issues: list[ManifestIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


_INTEGRATION_PATH = re.compile(r"^integrations\[(\d+)\]")


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
        ManifestIssue(_integration_name(document, i.path), i.path, i.line, i.message)
        for i in issues
    ]


def parse_manifest(source_yaml: str) -> manifest_pb2.Manifest:
    """Parse amp.yaml text into a Manifest, or raise ManifestError naming every problem."""
    try:
        document = load_yaml(source_yaml)
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
    return manifest
