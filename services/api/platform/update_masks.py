"""UpdateInstallation's update masks: which are allowed, and what each one changes.

Each mask the reference allows maps to a small function that copies its part of the
request's installation into the config being built and checks it (config_checks.py),
recording problems under the request's REST field names. The servicer
(installations.py) does the I/O around them: it loads the installation, looks up a
connection the request names, and saves the result when no mask found a problem.
Adding a mask means adding an entry to `_BY_MASK` (or a prefix to `OBJECT_MASKS`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ampmesh.manifest.v1 import config_pb2
from ampmesh.platform.v1 import installations_pb2

from services.api.platform.config_checks import SECTIONS, ContentChecker

UPDATE_AUTHOR = "api:update-installation"
_CONTENT = "config.content."
# The update masks the reference allows; "<section>.objects.<name>" takes any object name.
FIXED_MASKS = (
    "connectionId",
    "config.createdBy",
    "config.content.write.objects",
    "config.content.subscribe.objects",
    "config.content.proxy.enabled",
)
OBJECT_MASKS = tuple(f"{_CONTENT}{s}.objects." for s in SECTIONS)
ALLOWED_MASKS = (*FIXED_MASKS, *(f"{m}<objectName>" for m in OBJECT_MASKS))
# Where the request's problems are named.
_AT = "body.installation."
CONNECTION_AT = f"{_AT}connectionId"


def mask_problems(masks: Iterable[str]) -> dict[str, str]:
    """What is wrong with an update mask as a whole (none given, or masks that cannot
    be updated); empty when each one can be applied."""
    masks = tuple(masks)
    if not masks:
        return {"body.updateMask": f"is required: a list of {', '.join(ALLOWED_MASKS)}"}
    unknown = [
        m
        for m in masks
        if m not in FIXED_MASKS
        and not any(m.startswith(p) and len(m) > len(p) for p in OBJECT_MASKS)
    ]
    if unknown:
        return {
            "body.updateMask": f"{', '.join(unknown)} cannot be updated (allowed: "
            f"{', '.join(ALLOWED_MASKS)})"
        }
    return {}


@dataclass
class Update:
    """One UpdateInstallation call's changes, built mask by mask.

    `content` starts as the installation's current config and ends as the one to save;
    `connection` is what the servicer found for the request's connectionId before the
    masks were applied (the connection's id, or why it cannot be used), so that every
    function here stays free of I/O."""

    given: installations_pb2.InstallationPatch
    content: config_pb2.ConfigContent
    checker: ContentChecker
    connection: uuid.UUID | str | None = None
    created_by: str = UPDATE_AUTHOR
    config_changed: bool = False
    connection_id: uuid.UUID | None = None  # the connection to switch to

    @property
    def problems(self) -> dict[str, str]:
        return self.checker.problems


def _connection_id(update: Update, mask: str) -> None:
    if not update.given.connection_id:
        update.problems[CONNECTION_AT] = "is required by the mask: the connection to use"
    elif isinstance(update.connection, uuid.UUID):
        update.connection_id = update.connection
    else:
        update.problems[CONNECTION_AT] = update.connection or "names no connection"


def _created_by(update: Update, mask: str) -> None:
    if not update.given.config.created_by:
        update.problems[f"{_AT}config.createdBy"] = "is required by the mask"
    update.created_by = update.given.config.created_by


def _proxy_enabled(update: Update, mask: str) -> None:
    given = update.given.config.content
    if not given.proxy.HasField("enabled"):
        update.problems[f"{_AT}{mask}"] = "is required by the mask: true or false"
    update.content.proxy.enabled = given.proxy.enabled
    update.checker.check_proxy(update.content)


def _section_objects(update: Update, mask: str) -> None:
    """Every object of a section at once (write or subscribe): the map given replaces
    the stored one."""
    given = update.given.config.content
    section = mask.split(".")[2]
    if not given.HasField(section):
        update.problems[f"{_AT}{mask}"] = (
            "is required by the mask (an empty map removes every object)"
        )
    getattr(update.content, section).CopyFrom(getattr(given, section))
    update.checker.check_section(update.content, section)


def _one_object(update: Update, mask: str) -> None:
    """One object of a section ("config.content.<section>.objects.<name>")."""
    section, _, name = mask[len(_CONTENT) :].partition(".objects.")
    objects = getattr(update.given.config.content, section).objects
    if name not in objects:
        update.problems[f"{_AT}{mask}"] = (
            f"is required by the mask: installation.config.content.{section}."
            f"objects holds no {name!r}"
        )
        return
    getattr(update.content, section).objects[name].CopyFrom(objects[name])
    update.checker.check_object(section, name, objects[name])


_BY_MASK: dict[str, Callable[[Update, str], None]] = {
    "connectionId": _connection_id,
    "config.createdBy": _created_by,
    "config.content.proxy.enabled": _proxy_enabled,
    "config.content.write.objects": _section_objects,
    "config.content.subscribe.objects": _section_objects,
}
# The masks that change the installation's connection, not its config.
_NOT_CONFIG = frozenset({"connectionId"})


def apply_masks(update: Update, masks: Iterable[str]) -> None:
    """Apply each mask (checked by mask_problems) in order; problems land in
    update.problems."""
    for mask in masks:
        if mask not in _NOT_CONFIG:
            update.config_changed = True
        _BY_MASK.get(mask, _one_object)(update, mask)
