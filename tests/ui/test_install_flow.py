"""The published @amp-labs/react, unchanged, installs integrations against ampmesh.

A page embedding the library's InstallIntegration (tests/ui/page, bundled by esbuild with
the session stack's api as its API root, served from an origin of its own) is driven in
Debian's headless Chromium through the whole install flow, for HubSpot and for Salesforce,
with nothing stubbed: the mesh and its provider sandbox answer every call. The customer
connects through the OAuth popup, sees the fields the provider describes (its own labels,
fetched live), installs with a choice of optional fields, then changes the choice and
saves; the builder's REST view shows what the customer chose, and the page shows it
again when the customer comes back. Every screen is shot into
the run's screenshot folder (printed at the end of the session)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support.control_plane import listed
from tests.support.stack import Stack
from tests.support.ui import SCREEN_TIMEOUT, approve_in_popup, events, open_flow
from tests.support.ui_world import (
    CONSUMER,
    CONSUMER_NAME,
    GROUP,
    GROUP_NAME,
    HUBSPOT,
    SALESFORCE,
    ProviderCase,
    chosen,
    make_world,
    provider_labels,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("case", [HUBSPOT, SALESFORCE], ids=lambda c: c.provider)
async def test_a_customer_installs_and_changes_fields_through_the_embedded_ui(
    case: ProviderCase,
    stack: Stack,
    admin: httpx.AsyncClient,
    browser: Browser,
    page_origin: str,
    screens: Path,
) -> None:
    world = await make_world(admin, case)
    labels = await provider_labels(stack.endpoints["sandbox-http"], case)
    read = case.read
    first, second, third = read.optional
    context, flow = await open_flow(browser, screens, case.provider)
    page, log = flow.page, flow.log
    try:
        async with flow.step("load"):
            await page.goto(
                f"{page_origin}/?{world.page_query(GROUP, GROUP_NAME, CONSUMER, CONSUMER_NAME)}"
            )
            await expect(page.get_by_text(f"Set up {case.display} integration")).to_be_visible(
                timeout=SCREEN_TIMEOUT
            )

        # The sandbox's authorization page approves at once and redirects the popup to
        # the api's callback, whose page posts AUTHORIZATION_SUCCEEDED to the opener.
        async with flow.step("connect"):
            await approve_in_popup(page, page.get_by_role("button", name="Next").click)

        # The configure screen: the object and its fields, titled as the provider's own
        # metadata titles them (not as the manifest names them).
        async with flow.step("configure"):
            await expect(page.get_by_role("button", name="Install")).to_be_visible(
                timeout=SCREEN_TIMEOUT
            )
            for name in read.required:
                await expect(page.get_by_text(labels[name], exact=True)).to_be_visible()
            for name in read.optional:
                box = page.get_by_role("checkbox", name=labels[name], exact=True)
                await expect(box).to_have_attribute("aria-checked", "false")

        async with flow.step("choose"):
            await page.locator(f"[id='{first}']").click()
            await page.locator(f"[id='{third}']").click()
            await expect(page.locator(f"[id='{third}']")).to_have_attribute("aria-checked", "true")

        async with flow.step("install"):
            await page.get_by_role("button", name="Install").click()
            installed = (await events(page, 1))[0]
            assert installed["kind"] == "install"
            await expect(page.get_by_role("button", name="Save")).to_be_visible()

        # The builder sees one installation of the group, on the connection the popup
        # made, holding the customer's choice.
        installations = await world.installations(GROUP)
        assert [i["id"] for i in installations] == [installed["installationId"]]
        installation = await world.installation(installed["installationId"])
        connections = await listed(world.builder, "/connections", groupRef=GROUP)
        assert [c["id"] for c in connections] == [installation["connection"]["id"]]
        assert installation["connection"]["provider"] == case.provider
        # The names the page gave are the group's and the consumer's everywhere.
        assert installation["group"]["groupName"] == GROUP_NAME
        assert installation["connection"]["group"]["groupName"] == GROUP_NAME
        assert installation["connection"]["consumer"]["consumerName"] == CONSUMER_NAME
        assert installation["config"]["id"] == installed["config"]["id"]
        assert chosen(installation["config"], read.name, read.required) == {first, third}

        async with flow.step("change"):
            await page.locator(f"[id='{third}']").click()
            await page.locator(f"[id='{second}']").click()
            await expect(page.locator(f"[id='{second}']")).to_have_attribute("aria-checked", "true")

        async with flow.step("save"):
            await page.get_by_role("button", name="Save").click()
            updated = (await events(page, 2))[1]
            assert updated["kind"] == "update"
            assert updated["installationId"] == installed["installationId"]

        # A new config, holding the new choice, is the installation's now.
        saved = await world.installation(installed["installationId"])
        assert saved["config"]["id"] == updated["config"]["id"] != installed["config"]["id"]
        assert chosen(saved["config"], read.name, read.required) == {first, second}
        assert [i["id"] for i in await world.installations(GROUP)] == [saved["id"]]

        # Coming back later, the customer finds the installation as saved (the library
        # reads it back from the mesh).
        async with flow.step("return"):
            await page.reload()
            await expect(page.get_by_role("button", name="Save")).to_be_visible(
                timeout=SCREEN_TIMEOUT
            )
            for name, state in ((first, "true"), (second, "true"), (third, "false")):
                await expect(page.locator(f"[id='{name}']")).to_have_attribute(
                    "aria-checked", state
                )
        # The library's every call was answered as it expects: no refusal it had to
        # retry or swallow along the way.
        assert not log.refused, "\n".join(log.refused)
    finally:
        await context.close()
        await world.builder.aclose()
