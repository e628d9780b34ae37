"""The HTTP interface: the REST API under /api/v1, built by `create_app`."""

from bices.api.app import create_app

__all__ = ["create_app"]
