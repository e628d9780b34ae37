"""The analyst console: a single-page app served by the node at `/console/`.

The console is static files only (ES modules, CSS, the map outlines); everything it shows
comes from the REST API under `/api/v1` with the signed-in user's token, so every page
goes through the same access rule as any other client. Nothing here reads the store.
"""

from __future__ import annotations

from bices.console.routes import PREFIX, install

__all__ = ["PREFIX", "install"]
