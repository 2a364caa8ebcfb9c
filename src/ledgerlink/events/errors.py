"""Errors of the events feature."""

from __future__ import annotations

from ledgerlink.errors import NotFound, Unprocessable


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    title = "Webhook endpoint not found"


class WebhookTargetRefused(Unprocessable):
    """The URL is not https, does not resolve, or resolves to a loopback/link-local/private address."""

    code = "webhook_target_refused"
