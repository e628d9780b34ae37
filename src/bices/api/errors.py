"""The one place domain errors become HTTP statuses, and bad requests become named 4xx."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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


def install(app: FastAPI) -> None:
    @app.exception_handler(BicesError)
    async def domain_error(request: Request, error: BicesError) -> JSONResponse:
        return problem(STATUS.get(type(error), 400), str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            reason = next(e for e in errors if e.get("type") == "json_invalid")
            context = reason.get("ctx", {}).get("error", "")
            return problem(400, f"malformed JSON: {context}".rstrip(": "))
        messages = []
        for e in errors[:20]:
            where = _where(tuple(e.get("loc", ())))
            messages.append(f"{where}: {e.get('msg', 'invalid')}")
        return problem(422, "; ".join(messages), errors=[
            {"field": _where(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
            for e in errors[:100]
        ])  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(error.status_code, str(error.detail))
