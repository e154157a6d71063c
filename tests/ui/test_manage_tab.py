"""What a customer does in the published @amp-labs/react's "Manage" tab, against ampmesh.

The tab shows the connection (its workspace and status) and offers three calls to the
mesh: "Remove connection" while nothing is installed (DELETE …/connections/{id}),
"Re-authenticate" (PATCH …/connections/{id}:oauth-update, then the OAuth popup) and
"Yes, uninstall" once installed (DELETE …/installations/{id}). The page is driven through
all three in Debian's headless Chromium, nothing stubbed, and the builder's REST view is
checked after each; every screen is shot into the run's screenshot folder.

Two of the reference's behaviours the library relies on were found missing here and
built: a `frontend` key re-authenticating a connection, and an uninstall deleting the
connection no other installation uses (so "Reinstall" starts at the connect screen)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.control_plane import connect_group
from tests.support.stack import Stack
from tests.support.ui import SCREEN_TIMEOUT, approve_in_popup, events, open_flow
from tests.support.ui_world import GROUP, HUBSPOT, make_world

pytestmark = pytest.mark.e2e

CASE = HUBSPOT


async def open_manage_tab(page: Page) -> None:
    await page.get_by_role("tab", name="Manage").click()
    await expect(page.get_by_text("Connection details")).to_be_visible()


async def test_a_customer_removes_the_connection_reconnects_installs_and_uninstalls(
    stack: Stack,
    admin: httpx.AsyncClient,
    browser: Browser,
    page_origin: str,
    screens: Path,
) -> None:
    world = await make_world(admin, CASE)
    context, flow = await open_flow(browser, screens, f"{CASE.provider}-manage")
    page, log = flow.page, flow.log
    connect_screen = page.get_by_text(f"Set up {CASE.display} integration")
    install = page.get_by_role("button", name="Install")
    try:
        async with flow.step("load"):
            await page.goto(f"{page_origin}/?{world.page_query()}")
            await expect(connect_screen).to_be_visible(timeout=SCREEN_TIMEOUT)

        async with flow.step("connect"):
            await approve_in_popup(page, page.get_by_role("button", name="Next").click)
            await expect(install).to_be_visible(timeout=SCREEN_TIMEOUT)
        (first,) = await world.connections(GROUP)

        # Nothing installed yet: the tab offers removing the connection, not uninstalling,
        # and shows the connection as the mesh lists it.
        async with flow.step("manage-connected"):
            await open_manage_tab(page)
            # Its status, as the mesh lists the connection.
            await expect(page.get_by_text(first["status"].capitalize(), exact=True)).to_be_visible()
            await expect(page.get_by_text("Uninstall entire integration")).to_have_count(0)

        async with flow.step("remove-connection"):
            await page.get_by_role("button", name="Remove connection").click()
            await expect(connect_screen).to_be_visible(timeout=SCREEN_TIMEOUT)
        assert await world.connections(GROUP) == []
        got = await world.builder.get(f"/connections/{first['id']}")
        assert got.status_code == 404, got.text

        async with flow.step("connect-again"):
            await approve_in_popup(page, page.get_by_role("button", name="Next").click)
            await expect(install).to_be_visible(timeout=SCREEN_TIMEOUT)
        (connection,) = await world.connections(GROUP)
        assert connection["id"] != first["id"]

        async with flow.step("install"):
            await install.click()
            installed = (await events(page, 1))[0]
            assert installed["kind"] == "install"
            await expect(page.get_by_role("button", name="Save")).to_be_visible()
        installation = await world.installation(installed["installationId"])
        assert installation["connection"]["id"] == connection["id"]

        async with flow.step("manage-installed"):
            await open_manage_tab(page)
            await expect(page.get_by_text("Uninstall entire integration")).to_be_visible()
            await expect(page.get_by_role("button", name="Remove connection")).to_have_count(0)

        async with flow.step("uninstall"):
            await page.get_by_role("button", name="Yes, uninstall").click()
            await expect(page.get_by_text("Integration successfully uninstalled.")).to_be_visible(
                timeout=SCREEN_TIMEOUT
            )
            uninstalled = (await events(page, 2))[1]
            assert uninstalled == {
                "kind": "uninstall",
                "installationId": installed["installationId"],
                "config": None,
            }
        assert await world.installations(GROUP) == []
        gone = await world.builder.get(
            f"/integrations/{world.integration_id}/installations/{installed['installationId']}"
        )
        assert gone.status_code == 404, gone.text

        # "Reinstall Integration" starts over: the group has no installation, so the
        # library offers to install again (on the connection if the group still has one,
        # else from the connect screen), never the saved config's Save.
        async with flow.step("not-installed"):
            await page.get_by_role("button", name="Reinstall Integration").click()
            await expect(install.or_(connect_screen)).to_be_visible(timeout=SCREEN_TIMEOUT)
            await expect(page.get_by_role("button", name="Save")).to_have_count(0)

        assert not log.refused, "\n".join(log.refused)
    finally:
        await context.close()
        await world.builder.aclose()


async def test_a_customer_reauthenticates_the_connection_in_manage(
    admin: httpx.AsyncClient, browser: Browser, page_origin: str, screens: Path
) -> None:
    """Re-authenticating runs the OAuth flow again for the same connection: the mesh
    answers oauth-update with the provider's authorization URL, the popup approves, and
    the group keeps its one connection, holding the new tokens."""
    world = await make_world(admin, CASE)
    context, flow = await open_flow(browser, screens, f"{CASE.provider}-reauthenticate")
    page, log = flow.page, flow.log
    try:
        async with flow.step("load"):
            await page.goto(f"{page_origin}/?{world.page_query()}")
            next_button = page.get_by_role("button", name="Next")
            await expect(next_button).to_be_visible(timeout=SCREEN_TIMEOUT)

        async with flow.step("connect"):
            await approve_in_popup(page, next_button.click)
            await expect(page.get_by_role("button", name="Install")).to_be_visible(
                timeout=SCREEN_TIMEOUT
            )
        (connection,) = await world.connections(GROUP)

        async with flow.step("reauthenticate"):
            await open_manage_tab(page)
            await expect(page.get_by_text(f"Re-authenticate to {CASE.display}")).to_be_visible()

            async def ask_for_authorization_url() -> None:
                # The popup opens only once the mesh answered with the URL: a refusal is
                # said at once rather than as a popup that never came.
                async with page.expect_response(lambda r: ":oauth-update" in r.url) as answer:
                    await next_button.click()
                answered = await answer.value
                assert answered.ok, f"oauth-update: {answered.status} {await answered.text()}"

            await approve_in_popup(page, ask_for_authorization_url)
            await expect(page.get_by_text("Connection updated successfully")).to_be_visible(
                timeout=SCREEN_TIMEOUT
            )
        assert [c["id"] for c in await world.connections(GROUP)] == [connection["id"]]
        assert not log.refused, "\n".join(log.refused)
    finally:
        await context.close()
        await world.builder.aclose()


async def test_uninstalling_deletes_the_connection_no_other_installation_uses(
    admin: httpx.AsyncClient,
) -> None:
    """What the library's uninstall leaves of the group's connection, as the reference
    documents it (the UI's DELETE is this one; the flow above drives it from the page)."""
    world = await make_world(admin, CASE)
    try:
        connection = await connect_group(admin, world.project["id"], CASE.provider, GROUP)
        created = await world.builder.post(
            f"/integrations/{world.integration_id}/installations",
            json={"groupRef": GROUP, "connectionId": connection["id"], "config": {"content": {}}},
        )
        assert created.status_code == 201, created.text
        deleted = await world.builder.delete(
            f"/integrations/{world.integration_id}/installations/{created.json()['id']}"
        )
        assert deleted.status_code == 204, deleted.text
        assert await world.installations(GROUP) == []
        assert await world.connections(GROUP) == []
    finally:
        await world.builder.aclose()
