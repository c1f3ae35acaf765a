"""One error shape for every failure: {"error": {"code", "message", "details"}}.

Domain errors map to HTTP codes by class; framework errors (bad JSON, wrong types,
unknown routes) are rewritten into the same shape, never echoing the input back
(a rejected body may hold a password or an exchange secret).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    ExchangeError,
    ExchangeUnavailable,
    NotFound,
    ValidationFailed,
)

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides the status.
DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (ValidationFailed, 422),
    (NotFound, 404),
    (Conflict, 409),
    (AuthenticationFailed, 401),
    (ExchangeUnavailable, 503),  # the API never calls the exchange; should one ever leak
    (ExchangeError, 502),
)

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_failed",
    429: "rate_limited", 503: "unavailable",
}


class ApiError(Exception):
    """An HTTP-level failure of our own (auth, throttling, sizes) in the common shape."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def unauthorized(message: str = "authentication required", code: str = "unauthorized") -> ApiError:
    """Build a 401 that tells the client to send a bearer token."""
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def too_many_requests(message: str, retry_after: float) -> ApiError:
    """Build a 429 with a whole-second Retry-After."""
    from adapters.platform.metrics import HTTP_REFUSED

    HTTP_REFUSED.labels(reason="rate_limited").inc()
    seconds = max(1, int(retry_after + 0.999))
    return ApiError(429, "rate_limited", message, headers={"Retry-After": str(seconds)},
                    retryAfterSeconds=seconds)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def status_for(exc: DomainError) -> int:
    for cls, status in DOMAIN_STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def _field_path(loc: tuple[Any, ...]) -> str:
    # ("body", "quantity") -> "quantity"; ("path", "order_id") -> "order_id"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "")


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Describe each failed field without the offending input."""
    out = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid value"))
        # Our BeforeValidators raise ValueError("Value error, <text>"); drop the prefix.
        message = message.removeprefix("Value error, ")
        out.append({"field": _field_path(tuple(err.get("loc", ()))), "message": message,
                    "type": str(err.get("type", ""))})
    return out


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """Map any exception to the common error shape; the one place status codes are chosen."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, DomainError):
        return error_response(status_for(exc), exc.code, exc.message, exc.details)
    if isinstance(exc, RequestValidationError):
        details = validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        first = details[0] if details else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return error_response(422, "validation_failed", message, {"fields": details})
    if isinstance(exc, StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail),
                              headers=dict(exc.headers or {}))
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "something went wrong on our side")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error class through `handle_error`."""
    for exc_class in (ApiError, DomainError, RequestValidationError, StarletteHTTPException,
                      Exception):
        app.add_exception_handler(exc_class, handle_error)
