"""A manifest letting the customer choose any field (`optionalFieldsAuto: all`) offers, in
the published @amp-labs/react, a custom field the customer's instance has and the manifest
never names.

The builder makes the field (a HubSpot deal property with a label of its own) through
ampmesh's own object-metadata API while the customer has the configure screen open; the
customer comes back to it, finds the field under its label, ticks it and installs; the
stored config selects it. HubSpot deals: no other test reads deals' whole field list, so
the property, made on the session's shared sandbox, disturbs none."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support.metadata import custom_name
from tests.support.ui import SCREEN_TIMEOUT, approve_in_popup, events, open_flow
from tests.support.ui_world import GROUP, HUBSPOT_ANY_DEAL_FIELD, chosen, make_world

pytestmark = pytest.mark.e2e

CASE = HUBSPOT_ANY_DEAL_FIELD


async def test_a_custom_field_the_manifest_never_names_is_offered_and_installed(
    admin: httpx.AsyncClient, browser: Browser, page_origin: str, screens: Path
) -> None:
    world = await make_world(admin, CASE)
    name = custom_name("uitier")
    label = f"Renewal tier {name[-6:]}"  # unique on the shared sandbox, as the name is
    field = name.lower()  # HubSpot property names are lower case
    context, flow = await open_flow(browser, screens, f"{CASE.provider}-any-field")
    page, log = flow.page, flow.log
    install = page.get_by_role("button", name="Install")
    box = page.get_by_role("checkbox", name=label, exact=True)
    try:
        async with flow.step("load"):
            await page.goto(f"{page_origin}/?{world.page_query()}")
            next_button = page.get_by_role("button", name="Next")
            await expect(next_button).to_be_visible(timeout=SCREEN_TIMEOUT)

        async with flow.step("connect"):
            await approve_in_popup(page, next_button.click)
            await expect(install).to_be_visible(timeout=SCREEN_TIMEOUT)
            await expect(box).to_have_count(0)

        # The builder adds the field at the customer's instance through the customer's
        # connection (the group's), which drops the mesh's cached description of deals.
        made = await world.builder.put(
            f"/providers/{CASE.provider}/object-metadata",
            json={
                "groupRef": GROUP,
                "fields": {
                    CASE.read.name: [
                        {"fieldName": name, "displayName": label, "valueType": "string"}
                    ]
                },
            },
        )
        assert made.status_code == 200, made.text
        assert made.json()["fields"][CASE.read.name][name]["action"] == "create"

        async with flow.step("configure"):
            async with page.expect_response(lambda r: ":hydrate" in r.url) as answer:
                await page.reload()
            hydrated = await (await answer.value).json()
            (deals,) = hydrated["content"]["read"]["objects"]
            # The mesh knows the field: the live metadata has it under its label.
            assert deals["allFieldsMetadata"][field]["displayName"] == label
            assert deals["optionalFieldsAuto"] == "all"
            await expect(install).to_be_visible(timeout=SCREEN_TIMEOUT)
            await expect(box).to_have_attribute("aria-checked", "false")

        async with flow.step("choose"):
            await page.locator(f"[id='{field}']").click()
            await expect(box).to_have_attribute("aria-checked", "true")

        async with flow.step("install"):
            await install.click()
            installed = (await events(page, 1))[0]
            assert installed["kind"] == "install"
            await expect(page.get_by_role("button", name="Save")).to_be_visible()

        installation = await world.installation(installed["installationId"])
        assert chosen(installation["config"], CASE.read.name, CASE.read.required) == {field}
        assert not log.refused, "\n".join(log.refused)
    finally:
        await context.close()
        await world.builder.aclose()
