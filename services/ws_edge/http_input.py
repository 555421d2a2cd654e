"""A request's parameters and body, read and checked against the OpenAPI document's schemas. Pure.

Every path, query and header parameter and every body an operation takes is
validated up front against the very schema the served document states for
it, so the document and the server cannot disagree about what is valid: a
request the document allows is never refused for its shape, and one it
forbids never reaches core. What a JSON Schema cannot say is checked here
too, and is written in the schemas' descriptions: nesting depth, numbers
JSON can carry, lone surrogates (text that is not Unicode).

Failures are `BadInput` with the protocol's stable code and the field's name.
"""

from __future__ import annotations

import functools
import json
import math
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from libs.protocol.codes import ErrorCode
from libs.protocol.ids import has_surrogates

# Containers a body may nest, the body object itself included: a state or
# patch (one level down) may nest 32, core's limit for patches (libs/merge_patch).
MAX_BODY_DEPTH = 33
# A query integer's digits: more than any documented bound needs, far below
# the interpreter's limit on converting long digit strings (a ValueError).
_MAX_DIGITS = 18
_DIGITS = re.compile(f"[0-9]{{1,{_MAX_DIGITS}}}")
_DOCUMENT_URI = "urn:syncbridge:openapi"


class BadInput(Exception):
    """A request refused for its content: `code` is the stable code, `field` what was wrong."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Parameter:
    """One documented path, query or header parameter."""

    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    validator: Draft202012Validator


@dataclass(frozen=True)
class Input:
    """What a request carried, validated: parameters by documented name, and the body."""

    params: dict[str, Any]
    body: dict[str, Any]


class Operation:
    """The documented inputs of one operation, ready to check requests against."""

    def __init__(self, document: dict[str, Any], path: str, method: str) -> None:
        item = document["paths"][path]
        operation = item[method]
        registry = _registry(json.dumps(document))
        self.parameters = [
            Parameter(
                name=p["name"],
                location=p["in"],
                required=bool(p.get("required", False)),
                schema=p["schema"],
                validator=_validator(p["schema"], registry),
            )
            for p in [*item.get("parameters", []), *operation.get("parameters", [])]
        ]
        body = operation.get("requestBody")
        self.body_required = bool(body and body.get("required"))
        self.body: Draft202012Validator | None = None
        if body is not None:
            self.body = _validator(body["content"]["application/json"]["schema"], registry)
            self._body_order = _property_order(
                body["content"]["application/json"]["schema"], document
            )

    def read(
        self,
        *,
        path: Mapping[str, str],
        query: str,
        headers: Mapping[str, Sequence[str]],
        body: bytes,
    ) -> Input:
        """The request's inputs, or BadInput for the first thing wrong with them."""
        values = parse_query(query)
        params: dict[str, Any] = {}
        for parameter in self.parameters:
            if parameter.location == "path":
                raw: Sequence[str] = [path[parameter.name]] if parameter.name in path else []
            elif parameter.location == "query":
                raw = values.get(parameter.name, [])
            else:
                raw = headers.get(parameter.name.lower(), [])
            value = _parameter(parameter, raw)
            if value is not None:
                params[parameter.name] = value
        return Input(params, self._body(body))

    def _body(self, raw: bytes) -> dict[str, Any]:
        if self.body is None:
            return {}
        data = parse_json_object(raw) if raw else {}
        errors = list(self.body.iter_errors(data))
        if errors:
            raise _refusal(errors, self._body_order)
        return data


def parse_query(query: str) -> dict[str, list[str]]:
    """The query string's values by name (undecodable bytes become lone surrogates)."""
    values: dict[str, list[str]] = {}
    for name, value in urllib.parse.parse_qsl(
        query, keep_blank_values=True, errors="surrogateescape"
    ):
        values.setdefault(name, []).append(value)
    return values


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A body's JSON object; BadInput (malformed_json or invalid_field) for anything else."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        # RecursionError: nesting deeper than the parser's stack, e.g. "[[[[…".
        raise BadInput(ErrorCode.MALFORMED_JSON, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadInput(ErrorCode.MALFORMED_JSON, "body is not a JSON object")
    check_json_values(data)
    return data


def check_json_values(data: dict[str, Any]) -> None:
    """Depth, numbers and text a JSON Schema cannot bound; iterative, so depth is no risk here."""
    stack: list[tuple[Any, int, str | None]] = [(data, 1, None)]
    while stack:
        value, depth, field = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_BODY_DEPTH:
                raise BadInput(
                    ErrorCode.INVALID_FIELD,
                    f"{field}: nested deeper than {MAX_BODY_DEPTH - 1} levels",
                    field,
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and has_surrogates(key):
                    raise BadInput(ErrorCode.MALFORMED_JSON, "body holds text that is not Unicode")
                stack.append((item, depth + 1, field if field is not None else str(key)))
        elif isinstance(value, str) and has_surrogates(value):
            raise BadInput(ErrorCode.MALFORMED_JSON, "body holds text that is not Unicode")
        elif isinstance(value, float) and not math.isfinite(value):
            # 1e999 parses as infinity, which no JSON document can carry back.
            raise BadInput(ErrorCode.INVALID_FIELD, f"{field}: number out of range", field)


def _no_constant(name: str) -> Any:
    # NaN and Infinity are Python's extension, not JSON.
    raise ValueError(name)


def _parameter(parameter: Parameter, raw: Sequence[str]) -> Any:
    name = parameter.name
    if not raw:
        if parameter.required:
            raise BadInput(ErrorCode.MISSING_FIELD, f"{name}: required", name)
        return None
    if len(raw) > 1:
        raise BadInput(ErrorCode.INVALID_FIELD, f"{name}: given more than once", name)
    text = raw[0]
    if has_surrogates(text):
        raise BadInput(ErrorCode.INVALID_FIELD, f"{name}: not UTF-8 text", name)
    value: Any = text
    if parameter.schema.get("type") == "integer":
        # ASCII digits only: int() would also take "٣", " 3", "+3" and "3_0".
        if not _DIGITS.fullmatch(text):
            raise BadInput(ErrorCode.INVALID_FIELD, f"{name}: expected an integer", name)
        value = int(text)
    errors = list(parameter.validator.iter_errors(value))
    if errors:
        raise BadInput(ErrorCode.INVALID_FIELD, f"{name}: {_reason(errors[0])}", name)
    return value


def _refusal(errors: list[ValidationError], order: list[str]) -> BadInput:
    """The one error to report: the first field in the schema's order, missing or invalid."""

    def field_of(error: ValidationError) -> str | None:
        if error.validator == "required" and not error.path:
            missing = re.match(r"'(.*)' is a required property", error.message)
            return missing.group(1) if missing else None
        return str(error.path[0]) if error.path else None

    def rank(error: ValidationError) -> tuple[int, str, bool]:
        field = field_of(error) or ""
        # A wrong type first: it says more than the other rules it also breaks.
        return (
            order.index(field) if field in order else len(order),
            field,
            error.validator != "type",
        )

    first = min(errors, key=rank)
    field = field_of(first)
    if field is None:
        return BadInput(ErrorCode.MALFORMED_JSON, "body is not a JSON object")
    if first.validator == "required" and not first.path:
        return BadInput(ErrorCode.MISSING_FIELD, f"{field}: required", field)
    return BadInput(ErrorCode.INVALID_FIELD, f"{field}: {_reason(first)}", field)


def _reason(error: ValidationError) -> str:
    """A short reason naming the rule broken, without echoing the (maybe huge) value."""
    if error.validator == "not":
        if (
            isinstance(error.validator_value, dict)
            and error.validator_value.get("pattern") == "\x00"
        ):
            return "text holds U+0000, which the store cannot keep"
        return "contains a character that is not allowed (control, format or separator)"
    if error.validator in ("type", "enum", "const"):
        return f"expected {error.validator} {json.dumps(error.validator_value)}"
    return f"breaks {error.validator} {json.dumps(error.validator_value)[:80]}"


def _property_order(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return [*schema.get("required", []), *schema.get("properties", {})]


@functools.cache
def _registry(document: str) -> Registry[Any]:
    resource = Resource.from_contents(json.loads(document), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
    return registry


def _validator(schema: dict[str, Any], registry: Registry[Any]) -> Draft202012Validator:
    # References inside the document are "#/components/…": resolve them against it.
    rooted = json.loads(
        json.dumps(schema).replace('"#/components/', f'"{_DOCUMENT_URI}#/components/')
    )
    return Draft202012Validator(rooted, registry=registry)
