"""Errors the library raises; `bices.api.errors` maps each class to one HTTP status."""


class BicesError(Exception):
    """Base class: the message names the offending field and value."""


class InvalidInput(BicesError):
    """Input that is malformed or breaks a rule of the domain (HTTP 422)."""


class NotFound(BicesError):
    """The item does not exist, or the caller may not know that it does (HTTP 404)."""


class Forbidden(BicesError):
    """The caller is known but lacks the role or standing for the action (HTTP 403)."""


class Unauthenticated(BicesError):
    """No valid, unrevoked token was presented (HTTP 401)."""


class Conflict(BicesError):
    """The action clashes with the current state, e.g. a member that already exists (HTTP 409)."""


class TooLarge(BicesError):
    """A body, batch or attachment over a configured limit (HTTP 413)."""


class BadSignature(BicesError):
    """A signature that does not verify against the originator's registered key (HTTP 400)."""
