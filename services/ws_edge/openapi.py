"""The OpenAPI 3.1 document of the HTTP API, served at /v1/openapi.json.

Shapes the API shares with the WebSocket protocol (Session, Device) are not
written here: they come from libs/protocol/schema/shapes/, the files the
protocol's own schemas refer to, with their cross-file references turned into
references within this document, so the served document stands alone.
"""

from __future__ import annotations

from typing import Any

from libs.protocol import schemas
from libs.protocol.codes import ErrorCode

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


_ERRORS = {
    "400": _error("missing_field, invalid_field or malformed_json"),
    "401": _error("unauthorized: no, forged or expired token"),
    "404": _error("session_not_found (also another user's session)"),
    "500": _error("internal: unexpected server error; retry with the same op_id"),
    "503": _error("unavailable: session-core did not answer; retry with the same op_id"),
}
_WRITE_ERRORS = {
    **_ERRORS,
    "409": _error("conflict (details: version, epoch), lease_required or epoch_mismatch"),
    "413": _error("too_large: state or patch above the size limit"),
}

_SESSION_ID = {
    "name": "session_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_DEVICE_HEADER = {
    "name": "X-Device-Id",
    "in": "header",
    "required": False,
    "description": "The device the call acts as (else body device_id, else 'api').",
    "schema": {"type": "string", "maxLength": 128},
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "The op_id: re-sending it returns the original result, never applies twice.",
    "schema": {"type": "string", "maxLength": 128},
}

_SCHEMAS: dict[str, Schema] = {
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
            "session_id": {"type": "string", "description": "Attach to this one instead."},
            "device_id": {"type": "string"},
            "initial_state": {"type": "object"},
        },
    },
    "Update": {
        "type": "object",
        "required": ["base_version", "epoch", "patch"],
        "properties": {
            "op_id": {"type": "string", "maxLength": 128},
            "device_id": {"type": "string"},
            "base_version": {"type": "integer", "minimum": 0},
            "epoch": {"type": "integer", "minimum": 0},
            "patch": {"type": "object", "description": "RFC 7396 JSON merge patch."},
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
            "op_id": {"type": "string", "maxLength": 128},
            "device_id": {"type": "string"},
            "to_device": {"type": "string"},
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
            "/session/connect (services/ws_edge/README.md); this API is for backend services.",
        },
        "servers": [{"url": "https://api.staging.harmonyflow.io"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/sessions": {
                "get": {
                    "operationId": "listSessions",
                    "summary": "The user's live sessions, most recently updated first.",
                    "parameters": [
                        {"name": "page_size", "in": "query", "schema": {"type": "integer"}},
                        {"name": "page_token", "in": "query", "schema": {"type": "string"}},
                    ],
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
                        **_ERRORS,
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
                        {"name": "device_id", "in": "query", "schema": {"type": "string"}},
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
                        **_ERRORS,
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
