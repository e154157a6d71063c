"""The whole mesh as the session's `stack` fixture runs it (tests/conftest.py starts it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.launcher.mesh import Mesh
from services.runtime.tls import ServiceCredentials


@dataclass
class Stack:
    """The whole mesh, as `ampmesh up` runs it, for the test session."""

    mesh: Mesh
    endpoints: dict[str, str]

    @property
    def home(self) -> Path:
        return self.mesh.home

    @property
    def admin_api_key(self) -> str:
        """The org admin key `ampmesh up` made: it may create projects and their keys."""
        assert self.mesh.admin is not None
        return self.mesh.admin.api_key

    @property
    def org_id(self) -> str:
        assert self.mesh.admin is not None
        return self.mesh.admin.org_id

    def credentials(self, identity: str) -> ServiceCredentials:
        return self.mesh.credentials(identity)


def component(stack: Stack, name: str) -> Any:
    """One of the mesh's components (postgres, redis, pubsub, ...) by name."""
    return next(c for c in stack.mesh.components if c.name == name)
