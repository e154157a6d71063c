"""Fixtures of the browser test: the page built for the session stack's api and served
from an origin of its own, Debian's Chromium, and the run's screenshot folder."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from tests.support.control_plane import admin_client
from tests.support.stack import Stack
from tests.support.ui import (
    build_page,
    chromium,
    missing_requirements,
    screenshot_folder,
    serve_folder,
)


@pytest.fixture(scope="session")
def ui_requirements() -> None:
    """Fails (never skips) when the machine lacks what the test needs, naming it."""
    missing = missing_requirements()
    if missing:
        pytest.fail("the browser test cannot run:\n  " + "\n  ".join(missing), pytrace=False)


@pytest.fixture(scope="session")
async def page_origin(
    ui_requirements: None, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """The origin serving the page, bundled with the stack's api as its API root."""
    folder = await build_page(stack.endpoints["api"], tmp_path_factory.mktemp("ui-page"))
    async with serve_folder(folder) as origin:
        yield origin


@pytest.fixture(scope="session")
async def browser(ui_requirements: None) -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


@pytest.fixture(scope="session")
def screens(request: pytest.FixtureRequest) -> Path:
    """The run's screenshot folder; where it is is printed at the end of the session."""
    folder = screenshot_folder()
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def tell() -> None:
        if reporter is None:
            return
        # Outside pytest's capture, so that it shows whether the tests passed or not.
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(f"\nui screenshots: {folder}")

    request.addfinalizer(tell)
    return folder


@pytest.fixture(scope="module")
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The API's root, with the org admin key."""
    async with admin_client(stack) as http:
        yield http
