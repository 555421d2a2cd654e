"""The HTTP API for backend services: /v1/sessions…, same auth and semantics as the socket.

A request acts for the token's user; `device_id` (body, or `X-Device-Id`)
names the device it acts as, "api" by default. Writes take an `op_id` (body,
or `Idempotency-Key`): re-sending it returns the original result. Every
parameter and body is checked against the OpenAPI document's own schemas
before anything else happens (http_input.py); errors are
`{"error": {"code", "message", "details"?}}` with the protocol's codes, all
made by http_errors.py. openapi.py describes every route; openapi_test.py
keeps the two in step.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from libs.auth.errors import AuthError
from libs.auth.headers import bearer_from_header
from libs.core_client.client import Caller, CoreError
from libs.protocol.codes import ErrorCode
from services.ws_edge import convert, openapi
from services.ws_edge.connection import error_code_for
from services.ws_edge.http_errors import error_response
from services.ws_edge.http_input import BadInput, Input, Operation

if TYPE_CHECKING:
    from services.ws_edge.metrics import EdgeMetrics
    from services.ws_edge.replica import Replica

DEFAULT_DEVICE = "api"


class HttpError(Exception):
    """A refusal that is not about the request's content (its authentication)."""

    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


Handler = Callable[[Caller, Input], Coroutine[Any, Any, HTTPResponse]]


def register(app: Sanic[Any, Any], replica: Replica) -> None:
    """Adds the /v1/sessions routes to `app`."""
    core = replica.core
    metrics = replica.metrics
    document = openapi.document()

    def route(name: str, path: str, method: str, body: Handler) -> None:
        operation = Operation(document, path, method)

        async def handler(request: Request, **params: Any) -> HTTPResponse:
            with metrics.http.time(name) as timing:
                try:
                    caller = _caller(replica, request)
                    given = operation.read(
                        path=params,
                        query=request.query_string,
                        headers={k.lower(): request.headers.getall(k) for k in request.headers},
                        body=request.body or b"",
                    )
                    return await body(caller, given)
                except HttpError as error:
                    timing.code = error.code.value
                    return error_response(metrics, error.code, error.message, error.details)
                except BadInput as bad:
                    timing.code = bad.code.value
                    details = {"field": bad.field} if bad.field else None
                    return error_response(metrics, bad.code, bad.message, details)
                except CoreError as failure:
                    if failure.code == "invalid_argument":
                        timing.code = ErrorCode.INVALID_FIELD.value
                        return _refused_by_state(metrics, failure.message)
                    # Core refusing the token the edge just accepted: it expired in
                    # between (or the two clocks disagree). 401, as the edge's own check.
                    code = (
                        ErrorCode.UNAUTHORIZED
                        if failure.code == "unauthenticated"
                        else error_code_for(failure.code)
                    )
                    timing.code = code.value
                    position: dict[str, Any] = {
                        name: int(value)
                        for name, value in (
                            ("version", failure.trailers.get("syncbridge-version")),
                            ("epoch", failure.trailers.get("syncbridge-epoch")),
                        )
                        if value is not None and value.isdigit()
                    }
                    # core's message for a refusal; for an internal failure, nothing of it.
                    message = failure.message if code is not ErrorCode.INTERNAL else "core failed"
                    return error_response(metrics, code, message, position)

        handler.__name__ = name
        sanic_path = path.replace("{", "<").replace("}", ">")
        # unquote: a path parameter is the id itself ("a%20b" is "a b"), checked as such.
        app.add_route(handler, sanic_path, methods=[method.upper()], name=name, unquote=True)

    async def list_sessions(caller: Caller, given: Input) -> HTTPResponse:
        answer = await core.list_sessions(
            caller, given.params.get("page_size", 0), given.params.get("page_token", "")
        )
        return json_response(
            {
                "sessions": [
                    {
                        "session_id": s.session_id,
                        "version": s.version,
                        "epoch": s.epoch,
                        "active_device": s.active_device,
                        "updated_at": convert.rfc3339(s.updated_at),
                        "expires_at": convert.rfc3339(s.expires_at),
                    }
                    for s in answer.sessions
                ],
                "next_page_token": answer.next_page_token,
            }
        )

    async def create_session(caller: Caller, given: Input) -> HTTPResponse:
        answer = await core.open_session(
            caller,
            _device(given),
            given.body.get("session_id"),
            given.body.get("initial_state"),
        )
        return json_response(
            {"session": convert.session_view(answer.session), "created": answer.created},
            status=201 if answer.created else 200,
        )

    async def get_session(caller: Caller, given: Input) -> HTTPResponse:
        session_id = given.params["session_id"]
        return json_response(convert.session_view(await core.get_session(caller, session_id)))

    async def update_session(caller: Caller, given: Input) -> HTTPResponse:
        session_id, op_id = given.params["session_id"], _op_id(given)
        answer = await core.apply_update(
            caller,
            session_id=session_id,
            device_id=_device(given),
            op_id=op_id,
            # int(): JSON Schema's integer also admits 1.0.
            base_version=int(given.body["base_version"]),
            epoch=int(given.body["epoch"]),
            patch=given.body["patch"],
            require_lease=bool(given.body.get("require_lease", False)),
        )
        return json_response(
            {
                "op_id": op_id,
                "session_id": session_id,
                "epoch": answer.change.epoch,
                "version": answer.change.version,
                "outcome": convert.OUTCOME_NAMES.get(answer.outcome, "applied"),
                "replayed": answer.replayed,
            }
        )

    async def handoff(caller: Caller, given: Input) -> HTTPResponse:
        session_id, op_id = given.params["session_id"], _op_id(given)
        answer = await core.handoff(
            caller,
            session_id=session_id,
            device_id=_device(given),
            to_device=given.body["to_device"],
            op_id=op_id,
        )
        return json_response(
            {
                "op_id": op_id,
                "session_id": session_id,
                "epoch": answer.change.epoch,
                "version": answer.change.version,
                "active_device": answer.change.active_device,
                "lease_fence": answer.change.lease_fence,
                "replayed": answer.replayed,
            }
        )

    async def delete_session(caller: Caller, given: Input) -> HTTPResponse:
        session_id = given.params["session_id"]
        answer = await core.end_session(
            caller, session_id=session_id, device_id=_device(given), op_id=_op_id(given)
        )
        return json_response(
            {"session_id": session_id, "ended": True, "version": answer.change.version}
        )

    route("list_sessions", "/v1/sessions", "get", list_sessions)
    route("create_session", "/v1/sessions", "post", create_session)
    route("get_session", "/v1/sessions/{session_id}", "get", get_session)
    route("update_session", "/v1/sessions/{session_id}", "patch", update_session)
    route("delete_session", "/v1/sessions/{session_id}", "delete", delete_session)
    route("handoff", "/v1/sessions/{session_id}/handoff", "post", handoff)


def allowed_methods(path: str) -> list[str]:
    """The methods the OpenAPI document lists for `path` ([] if it names no such path)."""
    for template, methods in _DOCUMENTED_METHODS:
        if template.fullmatch(path):
            return methods
    return []


_DOCUMENTED_METHODS = [
    (
        re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))),
        sorted(m.upper() for m in item if m in ("get", "post", "put", "patch", "delete")),
    )
    for template, item in openapi.document()["paths"].items()
]


def _refused_by_state(metrics: EdgeMetrics, message: str) -> HTTPResponse:
    # The edge has refused whatever the document's schemas refuse, so what core
    # still calls invalid is the request against the session as it is now
    # (a device not attached to it): 409, naming the field core named.
    field, colon, _ = message.partition(":")
    details = {"field": field} if colon and field.isidentifier() else None
    return error_response(metrics, ErrorCode.INVALID_FIELD, message, details, status=409)


def _caller(replica: Replica, request: Request) -> Caller:
    """The token's user, and the token itself: core verifies it again."""
    try:
        token = bearer_from_header(request.headers.get("authorization"))
        return Caller(replica.verifier.verify(token).sub, token)
    except AuthError as error:
        raise HttpError(ErrorCode.UNAUTHORIZED, str(error.code)) from None


def _device(given: Input) -> str:
    """X-Device-Id, else the body's or query's device_id, else "api" (all checked already)."""
    value = given.params.get("X-Device-Id") or given.params.get("device_id")
    return str(value or given.body.get("device_id") or DEFAULT_DEVICE)


def _op_id(given: Input) -> str:
    value = given.params.get("Idempotency-Key") or given.params.get("op_id")
    # Without a client key the call is not safely repeatable by the client, but
    # core still needs one: a fresh id makes this one attempt unique.
    return str(value or given.body.get("op_id") or uuid.uuid4().hex)
