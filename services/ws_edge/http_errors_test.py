"""Whatever Sanic or a bug raises maps to a documented status, a stable code and the Error shape."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sanic import exceptions

from libs.protocol.codes import ErrorCode
from services.ws_edge import openapi
from services.ws_edge.http_errors import STATUS, classify, error_response
from services.ws_edge.metrics import EdgeMetrics

DOCUMENTED = {
    status
    for item in openapi.document()["paths"].values()
    for method, operation in item.items()
    if method != "parameters"
    for status in operation["responses"]
    if not status.startswith("2")
}


def sanic_exceptions() -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(cls, exceptions.SanicException)
    ]


def instance(cls: type[BaseException]) -> BaseException:
    try:
        return cls("boom")
    except TypeError:
        return cls()


@pytest.mark.parametrize("cls", sanic_exceptions(), ids=lambda cls: cls.__name__)
def test_every_framework_error_gets_a_documented_status_and_a_code(
    cls: type[BaseException],
) -> None:
    status, code, message, headers = classify(instance(cls))
    # 405 is the one status no operation can list (it answers methods the path lacks).
    assert str(status) in DOCUMENTED | {"405"}, (cls, status)
    assert STATUS[code] == status, (cls, code)
    assert "boom" not in message and cls.__name__ not in message
    assert set(headers) <= {"Allow"}


@pytest.mark.parametrize("error", [RuntimeError("secret detail"), KeyError("k"), RecursionError()])
def test_a_bug_is_a_500_that_names_nothing(error: BaseException) -> None:
    status, code, message, headers = classify(error)
    assert (status, code, headers) == (500, ErrorCode.INTERNAL, {})
    assert type(error).__name__ not in message and "secret" not in message


def test_error_response_is_the_shape_and_is_counted() -> None:
    registry = CollectorRegistry()
    metrics = EdgeMetrics(registry, open_connections=lambda: 0, active_sessions=lambda: 0)
    response = error_response(metrics, ErrorCode.TOO_LARGE, "too big", {"limit": 1})
    body: Any = json.loads(response.body or b"")
    assert response.status == 413
    assert body == {"error": {"code": "too_large", "message": "too big", "details": {"limit": 1}}}
    labels = {"status": "413", "code": "too_large"}
    assert registry.get_sample_value("syncbridge_edge_http_errors_total", labels) == 1
    assert registry.get_sample_value("syncbridge_edge_errors_total", {"code": "too_large"}) == 1
