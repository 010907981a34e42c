"""The REST API (``interlink.api``): a Litestar app built by :func:`create_app`."""

from interlink.api.app import create_app

__all__ = ["create_app"]
