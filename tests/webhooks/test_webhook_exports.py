"""The public surface of upscale_async.webhooks."""

from __future__ import annotations

import upscale_async.webhooks as webhooks


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and names every public attribute of the module."""
    public = {
        name
        for name in vars(webhooks)
        if name.isidentifier() and not name.startswith("_") and name != "annotations"
    }
    assert webhooks.__all__ == sorted(webhooks.__all__)
    assert set(webhooks.__all__) == public


def test_classes_show_public_module() -> None:
    """The module's own classes present themselves as upscale_async.webhooks.X."""
    assert webhooks.CompletionHub.__module__ == "upscale_async.webhooks"
    assert webhooks.StandardWebhooksVerifier.__module__ == "upscale_async.webhooks"
    assert webhooks.CompletionEvent.__module__ == "upscale_async"
