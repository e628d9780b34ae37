"""The one place domain errors become HTTP statuses, and bad requests become named 4xx."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bices.domain.errors import (
    BadSignature,
    BicesError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooLarge,
    Unauthenticated,
)
from bices.share.reading import own_event

log = logging.getLogger("bices.api")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

STATUS: dict[type[BicesError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Forbidden: 403,
    Unauthenticated: 401,
    Conflict: 409,
    TooLarge: 413,
    BadSignature: 400,
}


def problem(status: int, message: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": message, **extra}, status_code=status, headers=headers)


def _where(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"


async def refused(request: Request, status: int, message: str, **extra: object) -> JSONResponse:
    """Answer a refused write and record it in the audit trail (reads are audited elsewhere)."""
    viewer = getattr(request.state, "viewer", None)
    if request.method not in SAFE_METHODS and viewer is not None:
        # Only the caller's own member may see it: the path and the reason can name items
        # that the caller could see and others cannot. Unauthenticated refusals go to the
        # log, not the chain, so that no one without a token can grow it.
        detail = {"method": request.method, "status": status, "reason": message[:1000]}
        event = own_event(viewer, "request.refused", request.url.path, detail)
        await run_in_threadpool(request.app.state.node.store.audit.append, [event])
    elif viewer is None and status == 401:
        log.info("refused %s %s: %s", request.method, request.url.path, message)
    return problem(status, message, **extra)


def install(app: FastAPI) -> None:
    @app.exception_handler(BicesError)
    async def domain_error(request: Request, error: BicesError) -> JSONResponse:
        return await refused(request, STATUS.get(type(error), 400), str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            reason = next(e for e in errors if e.get("type") == "json_invalid")
            context = reason.get("ctx", {}).get("error", "")
            return await refused(request, 400, f"malformed JSON: {context}".rstrip(": "))
        messages = []
        for e in errors[:20]:
            where = _where(tuple(e.get("loc", ())))
            messages.append(f"{where}: {e.get('msg', 'invalid')}")
        return await refused(request, 422, "; ".join(messages), errors=[
            {"field": _where(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
            for e in errors[:100]
        ])  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 413:
            limit = request.app.state.node.settings.max_body_bytes
            return await refused(request, 413, f"request body exceeds the limit of {limit} bytes")
        if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
            return await refused(request, 400, "malformed JSON: the body is not valid UTF-8")
        return await refused(request, error.status_code, str(error.detail))
