"""TAXII 2.1 over HTTP at `/taxii2/`: authentication, content negotiation, TAXII error
messages and the X-TAXII headers; the behaviour is `bices.taxii.root.TaxiiRoot`.

Authentication: `Authorization: Bearer TOKEN`, or HTTP Basic with the user name and the API
token as password (what `taxii2-client` sends). DELETE is refused with 405: BICES never
deletes or overwrites a report version (a new version supersedes it), so no object can be
deleted through TAXII either.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as FastPath
from starlette.concurrency import run_in_threadpool

from bices.api.errors import SAFE_METHODS, STATUS
from bices.domain.errors import BicesError, Unauthenticated
from bices.domain.users import Viewer
from bices.node import Node
from bices.share.reading import own_event
from bices.taxii import filters, media
from bices.taxii.envelopes import MalformedJson
from bices.taxii.pages import Page
from bices.taxii.root import API_ROOT, TaxiiRoot, manifest_record

log = logging.getLogger("bices.taxii")
router = APIRouter(prefix="/taxii2", tags=["taxii"])
CHALLENGE = 'Basic realm="BICES TAXII", Bearer realm="BICES TAXII"'
TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
}


class Refusal(Exception):
    """An HTTP-level refusal (406, 415, 405) before any domain work."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def root_of(request: Request) -> TaxiiRoot:
    found: TaxiiRoot | None = getattr(request.app.state, "taxii", None)
    if found is None:
        node: Node = request.app.state.node
        found = request.app.state.taxii = TaxiiRoot(
            node.store, node.collector, node.settings.max_body_bytes
        )
    return found


def taxii_json(
    body: dict[str, Any] | str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return Response(text, status_code=status, media_type=media.TAXII_21, headers=headers)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A TAXII error message (spec section 3.6.1)."""
    body = {"title": TITLES.get(status, "Error"), "description": message,
            "http_status": str(status)}  # fmt: skip
    extra = dict(headers or {})
    if status == 401:
        extra["WWW-Authenticate"] = CHALLENGE
    return taxii_json(body, status, extra)


def authenticate(request: Request) -> Viewer:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    node: Node = request.app.state.node
    if not header.strip():
        raise Unauthenticated(
            "missing credentials: send 'Authorization: Bearer TOKEN', or HTTP Basic with your "
            "user name and API token as password"
        )
    if scheme.lower() == "bearer":
        viewer = node.coalition.authenticate(value.strip())
    elif scheme.lower() == "basic":
        try:
            user, sep, token = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("HTTP Basic credentials are not valid base64") from None
        if not sep:
            raise Unauthenticated("HTTP Basic credentials must be 'user:token'")
        viewer = node.coalition.authenticate(token)
        if viewer.name != user:
            raise Unauthenticated("the user name does not match the token")
    else:
        raise Unauthenticated(f"unsupported authorization scheme {scheme[:20]!r}")
    request.state.viewer = viewer
    return viewer


async def answer(
    request: Request, work: Callable[[Viewer], Response], api_root: str | None = None
) -> Response:
    """Authenticate, negotiate, check the API root named in the path (if any), run `work`
    off the event loop; map every refusal to a TAXII error, recording refused writes in
    the audit trail as the REST API does."""

    def authorised() -> Response:
        viewer = authenticate(request)
        if not media.accepts_taxii(request.headers.get("accept")):
            raise Refusal(406, f"this server answers only {media.TAXII_21}; check Accept")
        if api_root is not None:
            _check_root(api_root)
        return work(viewer)

    try:
        return await run_in_threadpool(authorised)  # one hop to a worker thread, not two
    except Refusal as refusal:
        return await refused(request, refusal.status, str(refusal), refusal.headers)
    except MalformedJson as bad:
        return await refused(request, 400, str(bad))
    except BicesError as failure:
        return await refused(request, STATUS.get(type(failure), 400), str(failure))


async def refused(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    if request.method not in SAFE_METHODS and viewer is not None:
        detail = {"method": request.method, "status": status, "reason": message[:1000]}
        event = own_event(viewer, "request.refused", request.url.path, detail)
        await run_in_threadpool(request.app.state.node.store.audit.append, [event])
    elif viewer is None and status == 401:
        log.info("refused %s %s: %s", request.method, request.url.path, message)
    return error(status, message, headers)


def _check_root(api_root: ApiRootParam) -> None:
    if api_root != API_ROOT:
        raise Refusal(404, f"API root {api_root[:100]} not found")


def _params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def _envelope(root: TaxiiRoot, page: Page) -> str:
    """The envelope as text, joining the objects' cached serialisations."""
    head: dict[str, Any] = {"more": page.more}
    next_ = root.next_of(page)
    if next_ is not None:
        head["next"] = next_
    text = json.dumps(head)[:-1]
    if page.items:
        text += ', "objects": [' + ",".join(item.obj.text for item in page.items) + "]"
    return text + "}"


# -- what the OpenAPI document says of the parameters ------------------------------------------
# Documented, not enforced by FastAPI: the TAXII layer checks them itself and answers with
# TAXII error messages. Schema-driven fuzzing reads these to aim its bad input.
ApiRootParam = Annotated[str, FastPath(json_schema_extra={"enum": [API_ROOT]})]
CollectionParam = Annotated[
    str, FastPath(json_schema_extra={"pattern": "^[a-z0-9][a-z0-9-]{0,63}$"})
]
ObjectIdParam = Annotated[str, FastPath(json_schema_extra={"pattern": filters.ID_PATTERN.pattern})]
StatusIdParam = Annotated[
    str, FastPath(json_schema_extra={"pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
                                                "[0-9a-f]{4}-[0-9a-f]{12}$"})
]  # fmt: skip
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "added_after": {"type": "string", "format": "date-time"},
    "limit": {"type": "integer", "minimum": 1, "maximum": filters.MAX_LIMIT},
    "next": {"type": "string"},
    "match[id]": {"type": "string", "pattern": filters.ID_PATTERN.pattern},
    "match[type]": {"type": "string", "pattern": filters.TYPE_PATTERN.pattern},
    "match[version]": {"type": "string"},
    "match[spec_version]": {"type": "string", "enum": [filters.SPEC_VERSION]},
}


def documented(names: frozenset[str]) -> dict[str, Any]:
    """`openapi_extra` naming the TAXII query parameters an endpoint takes."""
    return {"parameters": [{"name": name, "in": "query", "required": False,
                            "schema": _QUERY_SCHEMAS[name]} for name in sorted(names)]}  # fmt: skip


# -- discovery, API root, collections ---------------------------------------------------------


@router.get("/", summary="TAXII discovery")
async def discovery(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return await answer(request, lambda _: taxii_json(root_of(request).discovery(base)))


@router.get("/{api_root}/", summary="TAXII API root")
async def api_root(request: Request, api_root: ApiRootParam) -> Response:
    def work(_: Viewer) -> Response:
        return taxii_json(root_of(request).api_root())

    return await answer(request, work, api_root)


@router.get("/{api_root}/collections/", summary="TAXII collections offered to the caller")
async def collections(request: Request, api_root: ApiRootParam) -> Response:
    def work(viewer: Viewer) -> Response:
        offered = root_of(request).collections(viewer)
        return taxii_json({"collections": [c.to_json() for c in offered]})

    return await answer(request, work, api_root)


@router.get("/{api_root}/collections/{collection}/", summary="TAXII collection")
async def collection(
    request: Request, api_root: ApiRootParam, collection: CollectionParam
) -> Response:
    def work(viewer: Viewer) -> Response:
        return taxii_json(root_of(request).collection(viewer, collection).to_json())

    return await answer(request, work, api_root)


# -- objects ----------------------------------------------------------------------------------


@router.get(
    "/{api_root}/collections/{collection}/objects/",
    summary="TAXII get objects",
    openapi_extra=documented(filters.OBJECTS),
)
async def get_objects(
    request: Request, api_root: ApiRootParam, collection: CollectionParam
) -> Response:
    def work(viewer: Viewer) -> Response:
        root = root_of(request)
        query = root.query(_params(request), filters.OBJECTS)
        page = root.objects_page(viewer, collection, query)
        return taxii_json(_envelope(root, page), headers=page.dated)

    return await answer(request, work, api_root)


@router.post(
    "/{api_root}/collections/{collection}/objects/", status_code=202, summary="TAXII add objects"
)
async def add_objects(
    request: Request, api_root: ApiRootParam, collection: CollectionParam
) -> Response:
    body = await request.body()

    def work(viewer: Viewer) -> Response:
        if not media.is_taxii_body(request.headers.get("content-type")):
            raise Refusal(415, f"post a TAXII envelope as Content-Type: {media.TAXII_21}")
        status = root_of(request).add(viewer, collection, body)
        return taxii_json(status, 202)

    return await answer(request, work, api_root)


@router.get(
    "/{api_root}/collections/{collection}/objects/{object_id}/",
    summary="TAXII get an object",
    openapi_extra=documented(filters.OBJECT),
)
async def get_object(
    request: Request, api_root: ApiRootParam, collection: CollectionParam, object_id: ObjectIdParam
) -> Response:
    def work(viewer: Viewer) -> Response:
        root = root_of(request)
        query = root.query(_params(request), filters.OBJECT)
        page = root.object_page(viewer, collection, object_id, query)
        return taxii_json(_envelope(root, page), headers=page.dated)

    return await answer(request, work, api_root)


@router.delete(
    "/{api_root}/collections/{collection}/objects/{object_id}/",
    summary="TAXII delete an object: refused, reports are never deleted",
)
async def delete_object(
    request: Request, api_root: ApiRootParam, collection: CollectionParam, object_id: ObjectIdParam
) -> Response:
    def work(_: Viewer) -> Response:
        raise Refusal(
            405,
            "BICES never deletes or overwrites a report version: the originator issues a new "
            "version, which supersedes it (PUT /api/v1/reports/{id}); older versions stay "
            "readable to whoever may see them",
            {"Allow": "GET"},
        )

    return await answer(request, work, api_root)


@router.get(
    "/{api_root}/collections/{collection}/objects/{object_id}/versions/",
    summary="TAXII object versions",
    openapi_extra=documented(filters.VERSIONS),
)
async def object_versions(
    request: Request, api_root: ApiRootParam, collection: CollectionParam, object_id: ObjectIdParam
) -> Response:
    def work(viewer: Viewer) -> Response:
        root = root_of(request)
        query = root.query(_params(request), filters.VERSIONS)
        found = root.versions(viewer, collection, object_id, query)
        body: dict[str, Any] = {"more": found.more}
        if found.next is not None:
            body["next"] = found.next
        if found.versions:
            body["versions"] = found.versions
        return taxii_json(body, headers=found.dated)

    return await answer(request, work, api_root)


@router.get(
    "/{api_root}/collections/{collection}/manifest/",
    summary="TAXII manifest",
    openapi_extra=documented(filters.OBJECTS),
)
async def manifest(
    request: Request, api_root: ApiRootParam, collection: CollectionParam
) -> Response:
    def work(viewer: Viewer) -> Response:
        root = root_of(request)
        query = root.query(_params(request), filters.OBJECTS)
        page = root.manifest(viewer, collection, query)
        body: dict[str, Any] = {"more": page.more}
        next_ = root.next_of(page)
        if next_ is not None:
            body["next"] = next_
        if page.items:
            body["objects"] = [manifest_record(item) for item in page.items]
        return taxii_json(body, headers=page.dated)

    return await answer(request, work, api_root)


# -- status -----------------------------------------------------------------------------------


@router.get("/{api_root}/status/{status_id}/", summary="TAXII status of a posted envelope")
async def status(request: Request, api_root: ApiRootParam, status_id: StatusIdParam) -> Response:
    def work(viewer: Viewer) -> Response:
        return taxii_json(root_of(request).status(viewer, status_id))

    return await answer(request, work, api_root)


# taxii2-client polls the status URL without its trailing slash.
router.add_api_route(
    "/{api_root}/status/{status_id}", status, methods=["GET"], include_in_schema=False
)


@router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def unknown(request: Request, rest: str) -> Response:
    def work(_: Viewer) -> Response:
        raise Refusal(404, f"no TAXII endpoint at /taxii2/{rest[:200]}")

    return await answer(request, work)
