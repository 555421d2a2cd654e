"""The HTTP API for backend services: /v1/sessions…, same auth and semantics as the socket.

A request acts for the token's user; `device_id` (body, or `X-Device-Id`)
names the device it acts as, "api" by default. Writes take an `op_id` (body,
or `Idempotency-Key`): re-sending it returns the original result. Errors are
`{"error": {"code", "message", "details"?}}` with the protocol's codes.
openapi.py describes every route; openapi_test.py keeps the two in step.
"""

from __future__ import annotations

import json
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
from services.ws_edge import convert
from services.ws_edge.connection import error_code_for
from services.ws_edge.protocol import MAX_ID_LENGTH, Fields, ProtocolError

if TYPE_CHECKING:
    from services.ws_edge.replica import Replica

DEFAULT_DEVICE = "api"

STATUS = {
    ErrorCode.SESSION_NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.LEASE_REQUIRED: 409,
    ErrorCode.EPOCH_MISMATCH: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.INVALID_FIELD: 400,
    ErrorCode.MISSING_FIELD: 400,
    ErrorCode.MALFORMED_JSON: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DRAINING: 503,
    ErrorCode.INTERNAL: 500,
}


class HttpError(Exception):
    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def error_response(replica: Replica, error: HttpError) -> HTTPResponse:
    replica.metrics.errors.labels(code=error.code.value).inc()
    body: dict[str, Any] = {"code": error.code.value, "message": error.message}
    if error.details:
        body["details"] = error.details
    return json_response({"error": body}, status=STATUS.get(error.code, 500))


Handler = Callable[..., Coroutine[Any, Any, HTTPResponse]]


def register(app: Sanic[Any, Any], replica: Replica) -> None:
    """Adds the /v1/sessions routes to `app`."""
    core = replica.core

    def route(name: str, body: Handler) -> Handler:
        async def handler(request: Request, **params: Any) -> HTTPResponse:
            with replica.metrics.http.time(name) as timing:
                try:
                    caller = _caller(replica, request)
                    return await body(request, caller, **params)
                except HttpError as error:
                    timing.code = error.code.value
                    return error_response(replica, error)
                except ProtocolError as problem:
                    timing.code = problem.code.value
                    details = {"field": problem.field} if problem.field else None
                    return error_response(
                        replica, HttpError(problem.code, problem.message, details)
                    )
                except CoreError as failure:
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
                    return error_response(replica, HttpError(code, failure.message, position))

        handler.__name__ = name
        return handler

    async def list_sessions(request: Request, caller: Caller) -> HTTPResponse:
        size = request.args.get("page_size", "0")
        if not size.isdigit():
            raise HttpError(ErrorCode.INVALID_FIELD, "page_size: expected an integer")
        answer = await core.list_sessions(caller, int(size), request.args.get("page_token", ""))
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

    async def create_session(request: Request, caller: Caller) -> HTTPResponse:
        fields = Fields(_body(request), None)
        device = _device(request, fields)
        answer = await core.open_session(
            caller,
            device,
            fields.optional_text("session_id", MAX_ID_LENGTH),
            fields.optional_json_object("initial_state"),
        )
        return json_response(
            {"session": convert.session_view(answer.session), "created": answer.created},
            status=201 if answer.created else 200,
        )

    async def get_session(request: Request, caller: Caller, session_id: str) -> HTTPResponse:
        return json_response(convert.session_view(await core.get_session(caller, session_id)))

    async def update_session(request: Request, caller: Caller, session_id: str) -> HTTPResponse:
        fields = Fields(_body(request), None)
        op_id = _op_id(request, fields)
        answer = await core.apply_update(
            caller,
            session_id=session_id,
            device_id=_device(request, fields),
            op_id=op_id,
            base_version=fields.integer("base_version"),
            epoch=fields.integer("epoch"),
            patch=fields.json_object("patch"),
            require_lease=fields.optional_flag("require_lease"),
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

    async def handoff(request: Request, caller: Caller, session_id: str) -> HTTPResponse:
        fields = Fields(_body(request), None)
        op_id = _op_id(request, fields)
        answer = await core.handoff(
            caller,
            session_id=session_id,
            device_id=_device(request, fields),
            to_device=fields.text("to_device", MAX_ID_LENGTH),
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

    async def delete_session(request: Request, caller: Caller, session_id: str) -> HTTPResponse:
        # request.args maps each name to a list of values: take the first of each.
        fields = Fields({name: request.args.get(name) for name in request.args}, None)
        answer = await core.end_session(
            caller,
            session_id=session_id,
            device_id=_device(request, fields),
            op_id=_op_id(request, fields),
        )
        return json_response(
            {"session_id": session_id, "ended": True, "version": answer.change.version}
        )

    app.add_route(route("list_sessions", list_sessions), "/v1/sessions", methods=["GET"])
    app.add_route(route("create_session", create_session), "/v1/sessions", methods=["POST"])
    app.add_route(route("get_session", get_session), "/v1/sessions/<session_id>", methods=["GET"])
    app.add_route(
        route("update_session", update_session),
        "/v1/sessions/<session_id>",
        methods=["PATCH"],
    )
    app.add_route(
        route("delete_session", delete_session),
        "/v1/sessions/<session_id>",
        methods=["DELETE"],
    )
    app.add_route(route("handoff", handoff), "/v1/sessions/<session_id>/handoff", methods=["POST"])


def _caller(replica: Replica, request: Request) -> Caller:
    """The token's user, and the token itself: core verifies it again."""
    try:
        token = bearer_from_header(request.headers.get("authorization"))
        return Caller(replica.verifier.verify(token).sub, token)
    except AuthError as error:
        raise HttpError(ErrorCode.UNAUTHORIZED, str(error.code)) from None


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise HttpError(ErrorCode.MALFORMED_JSON, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpError(ErrorCode.MALFORMED_JSON, "body is not a JSON object")
    return body


def _device(request: Request, fields: Fields) -> str:
    header = request.headers.get("x-device-id")
    if header:
        return Fields({"device_id": header}, None).text("device_id", MAX_ID_LENGTH)
    return fields.optional_text("device_id", MAX_ID_LENGTH) or DEFAULT_DEVICE


def _op_id(request: Request, fields: Fields) -> str:
    header = request.headers.get("idempotency-key")
    if header:
        return Fields({"op_id": header}, None).text("op_id", MAX_ID_LENGTH)
    # Without a client key the call is not safely repeatable by the client, but
    # core still needs one: a fresh id makes this one attempt unique.
    return fields.optional_text("op_id", MAX_ID_LENGTH) or uuid.uuid4().hex
