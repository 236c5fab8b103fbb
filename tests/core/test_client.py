"""Client configuration: the API key and base URL, closing, and keeping the key secret."""

from __future__ import annotations

import aiohttp
import pytest
from aioresponses import aioresponses

from upscale_async import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    RetryPolicy,
    UpscaleClient,
)

from .conftest import BASE, KEY, s0_campaign, s0_leads


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """api_key defaults to UPSCALE_API_KEY and base_url to UPSCALE_BASE_URL."""
    monkeypatch.setenv("UPSCALE_API_KEY", "env-key")
    monkeypatch.setenv("UPSCALE_BASE_URL", "http://127.0.0.1:9/api/v2")
    client = UpscaleClient()
    assert client.base_url == "http://127.0.0.1:9/api/v2"


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key anywhere: ConfigurationError naming UPSCALE_API_KEY."""
    monkeypatch.delenv("UPSCALE_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="UPSCALE_API_KEY"):
        UpscaleClient()


def test_bad_base_url_is_refused() -> None:
    """A base URL that is not http(s) is refused at construction."""
    with pytest.raises(ConfigurationError, match="base_url must be an http"):
        UpscaleClient(KEY, base_url="ftp://example")


def test_default_base_url_is_the_real_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without UPSCALE_BASE_URL the client targets the documented base URL (D1)."""
    monkeypatch.delenv("UPSCALE_BASE_URL", raising=False)
    assert UpscaleClient(KEY).base_url == "https://app.upscaleoutreach.com/api/v2"


def test_repr_hides_the_key() -> None:
    """The API key appears in no repr."""
    client = UpscaleClient(KEY, base_url=BASE)
    assert KEY not in repr(client)
    assert KEY not in repr(client._api.transport)
    assert KEY not in repr(client._api.settings)
    assert KEY not in repr(client.with_options(timeout=1.0))


async def test_closed_client_raises(mocked: aioresponses) -> None:
    """Using a closed client raises ClientClosedError with a hint."""
    client = UpscaleClient(KEY, base_url=BASE)
    await client.aclose()
    with pytest.raises(ClientClosedError, match="closed"):
        await client.get_account()
    await client.aclose()  # idempotent


async def test_borrowed_session_is_not_closed(mocked: aioresponses) -> None:
    """A session passed in is used and left open."""
    mocked.get(f"{BASE}/account", payload={"plan_name": "p"})
    async with aiohttp.ClientSession() as session:
        async with UpscaleClient(KEY, base_url=BASE, session=session) as client:
            account = await client.get_account()
        assert account.plan_name == "p"
        assert not session.closed


async def test_error_text_never_contains_the_key(mocked: aioresponses) -> None:
    """Exception text does not leak the API key."""
    mocked.post(
        f"{BASE}/messages/request_message_generation",
        status=401,
        payload={"error": "Unauthorized: Invalid API key"},
    )
    async with UpscaleClient(KEY, base_url=BASE, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.request_message_generation(s0_campaign(), s0_leads())
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)


def test_policies_validate_on_construction() -> None:
    """Bad knobs are refused at construction with a clear message."""
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="wait_initial must be >= 0"):
        RetryPolicy(wait_initial=-1)
