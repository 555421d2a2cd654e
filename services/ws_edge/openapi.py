"""The OpenAPI 3.1 document of the HTTP API, served at /v1/openapi.json.

Shapes the API shares with the WebSocket protocol (Session, Device) are not
written here: they come from libs/protocol/schema/shapes/, the files the
protocol's own schemas refer to, with their cross-file references turned into
references within this document, so the served document stands alone.
"""

from __future__ import annotations

from typing import Any

from libs.protocol import page_token, schemas
from libs.protocol.codes import ErrorCode
from libs.protocol.ids import id_schema

Schema = dict[str, Any]

# shapes/<file> -> its name under components.schemas
_SHARED = {"session.json": "Session", "device.json": "Device"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _local(value: Any) -> Any:
    """A copy of a shape file's content with its references to sibling files made local."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref in _SHARED:
            return _ref(_SHARED[ref])
        # $id would rebase the references under it; $schema is the document's own (3.1).
        return {k: _local(v) for k, v in value.items() if k not in ("$id", "$schema")}
    if isinstance(value, list):
        return [_local(item) for item in value]
    return value


def _shared() -> dict[str, Schema]:
    return {
        name: _local(schemas.load("shapes", file[: -len(".json")]))
        for file, name in _SHARED.items()
    }


def _error(description: str) -> Schema:
    return {"description": description, **_json(_ref("Error"))}


# Every operation can answer these (the framework's own 400 and 413 included);
# the edge answers no other status. 405 (with `Allow`) goes to a method no
# operation of the path has, which the document therefore cannot list.
_ERRORS = {
    "400": _error(
        "missing_field, invalid_field or malformed_json (details.field names the field),"
        " or bad_request: the HTTP request itself is malformed"
    ),
    "401": _error("unauthorized: no, forged or expired token"),
    "404": _error("session_not_found (also another user's session)"),
    "408": _error("request_timeout: the request was not received in time"),
    "413": _error("too_large: the request body, or a state or patch, above the size limit"),
    "500": _error("internal: unexpected server error; retry with the same op_id"),
    "503": _error("unavailable: session-core did not answer; retry with the same op_id"),
}
_WRITE_ERRORS = {
    **_ERRORS,
    "409": _error(
        "conflict (details: version, epoch), lease_required or epoch_mismatch; or"
        " invalid_field: well formed, but refused against the session's current state"
        " (e.g. the acting device is not attached; details.field names the field)"
    ),
}

# Integers the protocol carries (versions, epochs): PostgreSQL's bigint.
_COUNTER = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_MAX_PAGE_SIZE = 500

_SESSION_ID = {
    "name": "session_id",
    "in": "path",
    "required": True,
    "schema": _ref("Id"),
}
_DEVICE_HEADER = {
    "name": "X-Device-Id",
    "in": "header",
    "required": False,
    "description": "The device the call acts as (else body device_id, else 'api').",
    "schema": _ref("Id"),
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "The op_id: re-sending it returns the original result, never applies twice.",
    "schema": _ref("Id"),
}
_PAGE_PARAMETERS = [
    {
        "name": "page_size",
        "in": "query",
        "required": False,
        "description": "Sessions per page (default 50).",
        "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_PAGE_SIZE},
    },
    {
        "name": "page_token",
        "in": "query",
        "required": False,
        "description": "The previous page's next_page_token: where this page starts.",
        "schema": _ref("PageToken"),
    },
]

_NO_NUL = {"type": "string", "pattern": "\u0000"}

_SCHEMAS: dict[str, Schema] = {
    "Id": id_schema(
        "A device, session or op id: 1-128 characters, no control, format, private-use"
        " or separator character other than a space."
    ),
    "PageToken": {
        "type": "string",
        "maxLength": page_token.MAX_LENGTH,
        "pattern": page_token.PATTERN,
        "description": "A position in the list; any token of this shape is one.",
    },
    # What a state or patch may hold: any JSON whose text has no U+0000, which
    # the store (PostgreSQL jsonb) cannot keep; nested at most 32 containers
    # deep, numbers finite (not expressible here: the edge checks them).
    "JsonValue": {
        "type": ["object", "array", "string", "number", "boolean", "null"],
        "not": _NO_NUL,
        "items": _ref("JsonValue"),
        "propertyNames": {"not": _NO_NUL},
        "additionalProperties": _ref("JsonValue"),
    },
    "JsonObject": {
        "type": "object",
        "propertyNames": {"not": _NO_NUL},
        "additionalProperties": _ref("JsonValue"),
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    },
    "SessionSummary": {
        "type": "object",
        "required": [
            "session_id",
            "version",
            "epoch",
            "active_device",
            "updated_at",
            "expires_at",
        ],
        "properties": {
            "session_id": {"type": "string"},
            "version": {"type": "integer", "minimum": 1},
            "epoch": {"type": "integer", "minimum": 1},
            "active_device": {"type": "string"},
            "updated_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
        },
        "additionalProperties": False,
    },
    "Opened": {
        "type": "object",
        "required": ["session", "created"],
        "properties": {"session": _ref("Session"), "created": {"type": "boolean"}},
        "additionalProperties": False,
    },
    "CreateSession": {
        "type": "object",
        "properties": {
            "session_id": {**_ref("Id"), "description": "Attach to this one instead."},
            "device_id": _ref("Id"),
            "initial_state": _ref("JsonObject"),
        },
    },
    "Update": {
        "type": "object",
        "required": ["base_version", "epoch", "patch"],
        "properties": {
            "op_id": _ref("Id"),
            "device_id": _ref("Id"),
            "base_version": _COUNTER,
            "epoch": _COUNTER,
            "patch": {**_ref("JsonObject"), "description": "RFC 7396 JSON merge patch."},
            "require_lease": {"type": "boolean", "default": False},
        },
    },
    "UpdateResult": {
        "type": "object",
        "required": ["op_id", "session_id", "epoch", "version", "outcome", "replayed"],
        "properties": {
            "op_id": {"type": "string"},
            "session_id": {"type": "string"},
            "epoch": {"type": "integer"},
            "version": {"type": "integer"},
            "outcome": {"type": "string", "enum": ["applied", "rebased"]},
            "replayed": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "Handoff": {
        "type": "object",
        "required": ["to_device"],
        "properties": {
            "op_id": _ref("Id"),
            "device_id": _ref("Id"),
            "to_device": _ref("Id"),
        },
    },
    "HandoffResult": {
        "type": "object",
        "required": [
            "op_id",
            "session_id",
            "epoch",
            "version",
            "active_device",
            "lease_fence",
            "replayed",
        ],
        "properties": {
            "op_id": {"type": "string"},
            "session_id": {"type": "string"},
            "epoch": {"type": "integer"},
            "version": {"type": "integer"},
            "active_device": {"type": "string"},
            "lease_fence": {"type": "integer"},
            "replayed": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
}


def document() -> Schema:
    """The whole document; a fresh dict each call."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SyncBridge Session State API",
            "version": "1.0.0",
            "description": "Sessions of the token's user. Devices use the WebSocket at "
            "/session/connect (services/ws_edge/README.md); this API is for backend services. "
            "Every parameter and body is checked against the schemas below before anything "
            "else. Every error, whatever its status, is an `Error` with a stable code; a "
            "method a path does not list gets 405 with `Allow`.",
        },
        "servers": [{"url": "https://api.staging.harmonyflow.io"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/sessions": {
                "get": {
                    "operationId": "listSessions",
                    "summary": "The user's live sessions, most recently updated first.",
                    "parameters": _PAGE_PARAMETERS,
                    "responses": {
                        "200": {
                            "description": "A page of sessions.",
                            **_json(
                                {
                                    "type": "object",
                                    "required": ["sessions", "next_page_token"],
                                    "properties": {
                                        "sessions": {
                                            "type": "array",
                                            "items": _ref("SessionSummary"),
                                        },
                                        "next_page_token": {"type": "string"},
                                    },
                                    "additionalProperties": False,
                                }
                            ),
                        },
                        **_ERRORS,
                    },
                },
                "post": {
                    "operationId": "createSession",
                    "summary": "Create a session, or attach the device to an existing one.",
                    "parameters": [_DEVICE_HEADER],
                    "requestBody": {"required": False, **_json(_ref("CreateSession"))},
                    "responses": {
                        "201": {"description": "Created.", **_json(_ref("Opened"))},
                        "200": {
                            "description": "Attached to an existing session.",
                            **_json(_ref("Opened")),
                        },
                        **_WRITE_ERRORS,
                    },
                },
            },
            "/v1/sessions/{session_id}": {
                "parameters": [_SESSION_ID],
                "get": {
                    "operationId": "getSession",
                    "summary": "The current snapshot.",
                    "responses": {
                        "200": {"description": "The session.", **_json(_ref("Session"))},
                        **_ERRORS,
                    },
                },
                "patch": {
                    "operationId": "updateSession",
                    "summary": "Apply a JSON merge patch with optimistic concurrency.",
                    "parameters": [_DEVICE_HEADER, _IDEMPOTENCY_KEY],
                    "requestBody": {"required": True, **_json(_ref("Update"))},
                    "responses": {
                        "200": {"description": "Committed.", **_json(_ref("UpdateResult"))},
                        **_WRITE_ERRORS,
                    },
                },
                "delete": {
                    "operationId": "deleteSession",
                    "summary": "End the session; later calls get 404.",
                    "parameters": [
                        _DEVICE_HEADER,
                        _IDEMPOTENCY_KEY,
                        {"name": "device_id", "in": "query", "schema": _ref("Id")},
                        {
                            "name": "op_id",
                            "in": "query",
                            "description": "Accepted and checked; ending is idempotent anyway.",
                            "schema": _ref("Id"),
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "Ended.",
                            **_json(
                                {
                                    "type": "object",
                                    "required": ["session_id", "ended", "version"],
                                    "properties": {
                                        "session_id": {"type": "string"},
                                        "ended": {"type": "boolean"},
                                        "version": {"type": "integer"},
                                    },
                                    "additionalProperties": False,
                                }
                            ),
                        },
                        **_WRITE_ERRORS,
                    },
                },
            },
            "/v1/sessions/{session_id}/handoff": {
                "parameters": [_SESSION_ID],
                "post": {
                    "operationId": "handoffSession",
                    "summary": "Move the active-device lease; every device is told.",
                    "parameters": [_DEVICE_HEADER, _IDEMPOTENCY_KEY],
                    "requestBody": {"required": True, **_json(_ref("Handoff"))},
                    "responses": {
                        "200": {"description": "Moved.", **_json(_ref("HandoffResult"))},
                        **_WRITE_ERRORS,
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {**_SCHEMAS, **_shared()},
        },
    }
