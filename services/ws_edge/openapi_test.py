"""Every /v1 route is in the OpenAPI document and every documented operation is routed."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from libs.auth import testing
from libs.config.settings import load_config
from libs.protocol import schemas
from libs.protocol.codes import ErrorCode
from services.ws_edge import openapi
from services.ws_edge.app import build_app
from services.ws_edge.config import EdgeConfig
from services.ws_edge.replica import Replica


def routed_operations(tmp_path: Path) -> set[tuple[str, str]]:
    async def collect() -> set[tuple[str, str]]:
        key = testing.write_pem(tmp_path / "key.pem", testing.ec_key())
        config = dataclasses.replace(load_config(EdgeConfig, {}), jwt_public_key_path=key)
        replica = Replica(config)
        app = build_app(replica)
        found: set[tuple[str, str]] = set()
        for route in app.router.routes:
            path = "/" + route.path.lstrip("/")
            if path.startswith("/v1/sessions"):
                path = re.sub(r"<([a-z_]+)(:[^>]*)?>", r"{\1}", path)
                found.update((path, method.lower()) for method in route.methods)
        await replica.core.close()
        return found

    return asyncio.run(collect())


def documented_operations() -> set[tuple[str, str]]:
    methods = {"get", "post", "patch", "put", "delete"}
    return {
        (path, method)
        for path, item in openapi.document()["paths"].items()
        for method in item
        if method in methods
    }


def test_routes_and_document_agree(tmp_path: Path) -> None:
    assert routed_operations(tmp_path) == documented_operations()


def test_document_is_structurally_sound() -> None:
    document = openapi.document()
    assert document["openapi"].startswith("3.")
    schemas = document["components"]["schemas"]
    text = repr(document)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in schemas, name
    for item in document["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["operationId"] and operation["responses"]
            assert "401" in operation["responses"]
            responses = operation["responses"]
            # Every status the edge can answer (http_errors.py), all in the one Error shape.
            assert {"400", "401", "404", "408", "413", "500", "503"} <= set(responses)
            if method != "get":
                assert "409" in responses
            for status, response in responses.items():
                if not status.startswith("2"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, status
    codes = schemas["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    assert codes == [code.value for code in ErrorCode]


def test_document_is_valid_openapi_3_1() -> None:
    validate(openapi.document())
    broken = openapi.document()
    broken["paths"]["/v1/sessions"]["get"]["responses"]["200"].pop("description")
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_shared_shapes_are_the_protocols_files_made_local() -> None:
    document = openapi.document()
    components = document["components"]["schemas"]
    session = schemas.load("shapes", "session")
    assert components["Session"]["required"] == session["required"]
    assert components["Session"]["properties"]["devices"]["items"] == {
        "$ref": "#/components/schemas/Device"
    }
    assert "$id" not in components["Session"] and "$id" not in components["Device"]
    # Every reference resolves within the document, which therefore stands alone.
    registry = Registry().with_resource(
        "urn:doc", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    validator = Draft202012Validator(
        {"$ref": "urn:doc#/components/schemas/Opened"}, registry=registry
    )
    example = {"session": session["examples"][0], "created": True}
    assert list(validator.iter_errors(example)) == []
    assert [e.json_path for e in validator.iter_errors({**example, "created": 1})] == ["$.created"]
