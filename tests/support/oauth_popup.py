"""What the connect UI's OAuth popup does, for end-to-end tests: follow the authorization
URL oauth-connect answered to the sandbox's consent (which approves at once and redirects),
then load the api's callback page, whose script posts the outcome to the opener."""

from __future__ import annotations

import re

import httpx

from tests.support.stack import Stack


async def connect_in_popup(stack: Stack, authorization_url: str) -> str:
    """The id of the connection the popup's flow made (the test fails if it made none)."""
    return await follow_consent(stack.endpoints["api"], authorization_url)


async def follow_consent(api_url: str, authorization_url: str) -> str:
    """connect_in_popup for an api host at api_url (its callback must be there)."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
        consent = await browser.get(authorization_url)
        assert consent.status_code == 302, consent.text
        location = consent.headers["location"]
        assert location.startswith(f"{api_url}/callbacks/v1/oauth?"), location
        page = await browser.get(location)
    assert page.status_code == 200, page.text
    assert "AUTHORIZATION_SUCCEEDED" in page.text, page.text
    made = re.search(r'"connection": "([0-9a-f-]{36})"', page.text)
    assert made is not None, page.text
    return made.group(1)
