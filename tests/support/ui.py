"""The browser test's harness (tests/ui): the page embedding the published @amp-labs/react,
bundled by esbuild for the stack's api root, served from an origin of its own, and Debian's
Chromium driven by Playwright, taking screenshots of each screen into a run folder.

Nothing here downloads a browser or packages: scripts/install_ui.sh installs both (`make
test` runs it); when either is missing the harness fails saying so, rather than skipping."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, Response, async_playwright

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "tests" / "ui"
CHROMIUM = Path(os.environ.get("AMPMESH_CHROMIUM", "/usr/bin/chromium"))
# Debian's Chromium on a closed network: no sandbox (root in CI), no GPU, and none of the
# background fetches (QUIC, sync, component updates) that would only meet refused ports.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
INSTALL_HINT = "run scripts/install_ui.sh (`make test` does)"
# How long one screen may take to appear: the first hydrate asks the provider for its
# field metadata through the connection, on a busy 2-core machine.
SCREEN_TIMEOUT = 20_000


def missing_requirements() -> list[str]:
    """What the browser test needs and this machine lacks, each naming how to get it."""
    missing = []
    if shutil.which("node") is None:
        missing.append("Node.js (node) is not on PATH: install Node 20 or newer")
    if not (UI / "node_modules" / "@amp-labs" / "react" / "package.json").exists():
        missing.append(f"tests/ui/node_modules is not installed: {INSTALL_HINT}")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} is missing: {INSTALL_HINT} (Debian package chromium)")
    return missing


async def build_page(api_root: str, out: Path) -> Path:
    """The page bundled into out with its API root fixed to api_root (the library appends
    /v1), as a builder's build would with REACT_APP_AMP_SERVER."""
    process = await asyncio.create_subprocess_exec(
        "node",
        str(UI / "build.mjs"),
        "--server",
        api_root,
        "--out",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, f"building the page failed:\n{output.decode()}"
    return out


@contextlib.asynccontextmanager
async def serve_folder(folder: Path) -> AsyncIterator[str]:
    """folder over HTTP on a loopback port of its own (another origin than the api's, as a
    product's page is); yields the origin."""
    app = web.Application()

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/", folder)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's headless Chromium under Playwright (never a downloaded browser)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


def screenshot_folder() -> Path:
    """Where this run's screenshots go: $AMPMESH_UI_SCREENSHOTS, or a new
    /tmp/ampmesh-ui-<time> folder."""
    chosen = os.environ.get("AMPMESH_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else Path(f"/tmp/ampmesh-ui-{time.strftime('%Y%m%d-%H%M%S')}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Screens:
    """Numbered screenshots of one flow (`<flow>-01-<screen>.png`, ...) in folder."""

    folder: Path
    flow: str
    taken: list[Path] = field(default_factory=list)

    async def shoot(self, page: Page, screen: str) -> Path:
        name = re.sub(r"[^a-z0-9]+", "-", screen.lower()).strip("-")
        path = self.folder / f"{self.flow}-{len(self.taken) + 1:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@dataclass
class BrowserLog:
    """What the page said on its console, which requests failed, and every answer of 400
    or more (`refused`): the first thing to read when the flow trips."""

    lines: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", lambda m: self.lines.append(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.lines.append(f"pageerror: {e}"))
        page.on(
            "requestfailed",
            lambda r: (
                None  # the test aborts these itself (off_machine)
                if off_machine(r.url)
                else self.lines.append(f"failed: {r.method} {r.url} {r.failure}")
            ),
        )
        page.on("response", self._answered)

    async def _answered(self, response: Response) -> None:
        if response.status < 400:
            return
        body = ""
        with contextlib.suppress(Exception):  # a page gone meanwhile has no body to read
            body = (await response.text())[:400]
        request = response.request
        refusal = f"http {response.status}: {request.method} {request.url} {body}"
        self.refused.append(refusal)
        self.lines.append(refusal)

    def __str__(self) -> str:
        return "\n".join(self.lines[-60:])


def off_machine(url: str) -> bool:
    """A URL outside this machine (the library's web fonts and logo): the test aborts
    them, so nothing waits on a closed network and no request leaves the machine."""
    host = urlsplit(url).hostname or ""
    return url.startswith(("http:", "https:")) and host not in ("127.0.0.1", "localhost")


@dataclass
class Flow:
    """One page driven through named steps: each step's screen is shot when it is done;
    a step that trips is shot too and reported with the page's text and the browser's
    log, so a failure says where the UI stopped and what the mesh answered."""

    page: Page
    screens: Screens
    log: BrowserLog

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        try:
            yield
        except Exception as error:
            shot = await self.screens.shoot(self.page, f"tripped-at-{name}")
            text = ""
            with contextlib.suppress(Exception):
                text = await self.page.inner_text("body", timeout=2_000)
            raise AssertionError(
                f"the UI tripped at {name!r}: {error}\n--- page text:\n{text}\n"
                f"--- screenshot: {shot}\n--- browser:\n{self.log}"
            ) from error
        await self.screens.shoot(self.page, name)


async def open_flow(browser: Browser, screens: Path, name: str) -> tuple[BrowserContext, Flow]:
    """A fresh browser context (requests off the machine aborted) with one watched page,
    driven as the flow `name` (its screenshots `<name>-NN-<step>.png` in screens); the
    caller closes the context."""
    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    await context.route(off_machine, lambda route: route.abort())
    page = await context.new_page()
    log = BrowserLog()
    log.watch(page)
    return context, Flow(page, Screens(screens, name), log)


async def events(page: Page, count: int) -> list[dict[str, Any]]:
    """The library's install/update/uninstall callbacks the page recorded (window.ampEvents,
    tests/ui/page/main.jsx), once there are count."""
    await page.wait_for_function(f"window.ampEvents.length >= {count}", timeout=SCREEN_TIMEOUT)
    recorded: list[dict[str, Any]] = await page.evaluate("window.ampEvents")
    return recorded


async def approve_in_popup(page: Page, click: Callable[[], Awaitable[None]]) -> None:
    """Clicks what opens the library's OAuth popup and waits until the popup is gone: the
    sandbox's authorization page approves at once and redirects the popup to the api's
    callback, whose page posts AUTHORIZATION_SUCCEEDED to the opener, which closes it."""
    async with page.expect_popup() as opened:
        await click()
    popup = await opened.value
    # The library closes the popup once it has the message (maybe already).
    if not popup.is_closed():
        await popup.wait_for_event("close", timeout=SCREEN_TIMEOUT)
