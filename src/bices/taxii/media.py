"""TAXII 2.1 media types and content negotiation (spec section 1.6.8): what a client may ask
for in `Accept` and send in `Content-Type`."""

from __future__ import annotations

TAXII = "application/taxii+json"
TAXII_21 = "application/taxii+json;version=2.1"
STIX_21 = "application/stix+json;version=2.1"
VERSION = "2.1"


def _ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    """Media ranges of a header, lower-cased, with their parameters."""
    ranges = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        ranges.append((pieces[0].lower(), params))
    return ranges


def accepts_taxii(accept: str | None) -> bool:
    """Whether a response in `application/taxii+json;version=2.1` satisfies `Accept`.

    A missing header, `*/*` and `application/*` accept anything; `application/taxii+json`
    without a version means the newest this server speaks, which is 2.1.
    """
    if accept is None or not accept.strip():
        return True
    for media, params in _ranges(accept):
        if params.get("q") in {"0", "0.0", "0.00", "0.000"}:
            continue
        if media in {"*/*", "application/*"}:
            return True
        if media == TAXII and params.get("version", VERSION) == VERSION:
            return True
    return False


def is_taxii_body(content_type: str | None) -> bool:
    """Whether a request body is declared as a TAXII 2.1 envelope."""
    if content_type is None:
        return False
    ranges = _ranges(content_type)
    if len(ranges) != 1:
        return False
    media, params = ranges[0]
    return media == TAXII and params.get("version", VERSION) == VERSION
