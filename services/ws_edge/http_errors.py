"""The one way the edge answers HTTP with an error: documented shape, stable code, counted.

Every non-2xx the edge sends goes through `error_response`: the API's own
refusals, refused WebSocket upgrades, and, through `EdgeErrorHandler`, what
Sanic raises itself (no route, method not allowed, body too large, a
malformed request, timeouts) and any exception nothing else caught. The body
is always `{"error": {"code", "message", "details"?}}` (the OpenAPI document's
`Error`), the status one the document lists, and each one is counted in
`syncbridge_edge_errors_total{code}` and `syncbridge_edge_http_errors_total{status,code}`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sanic import Request
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from libs.protocol.codes import ErrorCode
from services.ws_edge.metrics import EdgeMetrics

log = logging.getLogger(__name__)

STATUS = {
    ErrorCode.SESSION_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.CONFLICT: 409,
    ErrorCode.LEASE_REQUIRED: 409,
    ErrorCode.EPOCH_MISMATCH: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.INVALID_FIELD: 400,
    ErrorCode.MISSING_FIELD: 400,
    ErrorCode.MALFORMED_JSON: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DRAINING: 503,
    ErrorCode.INTERNAL: 500,
}

# What Sanic raises, by status, as (code, message). The messages are fixed:
# Sanic's own would echo the request's path or method back.
_FRAMEWORK = {
    400: (ErrorCode.BAD_REQUEST, "malformed HTTP request"),
    404: (ErrorCode.NOT_FOUND, "no such route"),
    405: (ErrorCode.METHOD_NOT_ALLOWED, "method not allowed on this route (see Allow)"),
    408: (ErrorCode.REQUEST_TIMEOUT, "request not received in time"),
    413: (ErrorCode.TOO_LARGE, "request body above the size limit"),
    503: (ErrorCode.UNAVAILABLE, "no response in time; retry with the same op_id"),
}
_INTERNAL = (ErrorCode.INTERNAL, "unexpected server error; retry with the same op_id")


def error_response(
    metrics: EdgeMetrics,
    code: ErrorCode,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTTPResponse:
    """The error body for `code` (status from STATUS unless given), counted."""
    answer = status if status is not None else STATUS.get(code, 500)
    metrics.errors.labels(code=code.value).inc()
    metrics.http_errors.labels(status=str(answer), code=code.value).inc()
    body: dict[str, Any] = {"code": code.value, "message": message}
    if details:
        body["details"] = dict(details)
    return json_response({"error": body}, status=answer, headers=dict(headers or {}))


def classify(exception: BaseException) -> tuple[int, ErrorCode, str, dict[str, str]]:
    """(status, code, message, headers) for an exception no handler answered."""
    if isinstance(exception, SanicException):
        status = int(exception.status_code)
        headers = {str(k): str(v) for k, v in (getattr(exception, "headers", None) or {}).items()}
        if status in _FRAMEWORK:
            code, message = _FRAMEWORK[status]
            # Only the Allow header of a 405 is the client's business.
            kept = {k: v for k, v in headers.items() if k.lower() == "allow"}
            return status, code, message, kept
        if 400 <= status < 500:
            # Any other client error of the framework's (417, 416…) is a malformed request.
            return 400, ErrorCode.BAD_REQUEST, _FRAMEWORK[400][1], {}
    return 500, *_INTERNAL, {}


class EdgeErrorHandler(ErrorHandler):
    """Sanic's last resort, answering in the API's error shape instead of Sanic's page."""

    def __init__(
        self, metrics: EdgeMetrics, allowed: Callable[[str], list[str]] = lambda path: []
    ) -> None:
        super().__init__()
        self._metrics = metrics
        self._allowed = allowed

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        status, code, message, headers = classify(exception)
        if status == 405 and not any(k.lower() == "allow" for k in headers):
            # Sanic's router names no methods for a path with parameters; the
            # document does (RFC 9110: a 405 must carry Allow).
            headers["Allow"] = ", ".join(self._allowed(getattr(request, "path", "")))
        if status >= 500 and status != 503:
            # A bug: the traceback goes to the log, never to the client.
            log.error(
                "unhandled error",
                exc_info=exception,
                extra={"path": getattr(request, "path", ""), "method": request.method},
            )
        return error_response(self._metrics, code, message, status=status, headers=headers)
