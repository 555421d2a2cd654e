"""Core trusts no caller it cannot verify: every RPC, over real gRPC, real servers.

The cases come from the service descriptor, so an RPC added without thought
for its caller's identity fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from libs.auth import testing
from libs.identity import identity
from services.session_core.harness import (
    Pki,
    as_user,
    core_config,
    running_core,
    stub_for,
    tls_stub_for,
    token_for,
    wait_serving,
)
from services.session_core.server import Running
from syncbridge.session.v1 import session_pb2

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

SERVICE = session_pb2.DESCRIPTOR.services_by_name["SessionService"]
METHODS = [method.name for method in SERVICE.methods]


@pytest_asyncio.fixture
async def core(pg_dsn: str, redis_url: str, amqp_url: str) -> AsyncIterator[Running]:
    config = core_config(pg_dsn, redis_url, amqp_url, max_devices_per_user=1)
    async with running_core(config) as running:
        yield running


@pytest_asyncio.fixture
async def stub(core: Running) -> AsyncIterator[Any]:
    async with stub_for(core.port) as client:
        yield client


# The headers a call may name its user in: the edge's binary one (any id), and
# the older ASCII one edges still send for older cores.
NAMING_HEADERS = (identity.METADATA_KEY, "x-syncbridge-user")


def _metadata(
    token: str | None, named: str | None, header: str = identity.METADATA_KEY
) -> tuple[tuple[str, str | bytes], ...]:
    metadata: tuple[tuple[str, str | bytes], ...] = ()
    if token is not None:
        metadata += (("authorization", f"Bearer {token}"),)
    if named is not None:
        value = identity.to_metadata(named) if header == identity.METADATA_KEY else named
        metadata += ((header, value),)
    return metadata


async def outcome(
    stub: Any,
    method: str,
    token: str | None,
    named: str | None,
    header: str = identity.METADATA_KEY,
) -> tuple[Any, str]:
    """(status code, stable code) a call of `method` gets with these credentials.

    ApplyUpdates carries the credentials per update and answers per update;
    every other RPC is unary, with them in its metadata (the user named in
    `header`).
    """
    if method == "ApplyUpdates":
        item = session_pb2.UserUpdate(
            user_id=named or "",
            token=token or "",
            update=session_pb2.ApplyUpdateRequest(session_id="s", device_id="d", op_id="o"),
        )
        try:
            answer = await stub.ApplyUpdates(
                session_pb2.ApplyUpdatesRequest(updates=[item]), timeout=10
            )
        except grpc.aio.AioRpcError as error:  # refused as a whole: the caller's identity
            trailers = dict(error.trailing_metadata() or ())
            return error.code(), str(trailers.get("syncbridge-error", ""))
        (result,) = answer.results
        if result.HasField("applied"):
            return grpc.StatusCode.OK, ""
        status = next(s for s in grpc.StatusCode if s.value[0] == result.refused.status)
        return status, result.refused.code
    request = getattr(session_pb2, SERVICE.methods_by_name[method].input_type.name)()
    try:
        await getattr(stub, method)(request, metadata=_metadata(token, named, header), timeout=10)
    except grpc.aio.AioRpcError as error:
        trailers = dict(error.trailing_metadata() or ())
        return error.code(), str(trailers.get("syncbridge-error", ""))
    return grpc.StatusCode.OK, ""


def _stranger_token(user: str) -> str:
    """Well-formed and in policy, but signed by a key core does not trust."""
    return testing.sign(testing.claims(sub=user), testing.ec_key(), "ES256")


Credentials = tuple[str | None, str | None]  # (token, user named in call metadata)

UNAUTHENTICATED: dict[str, Callable[[], Credentials]] = {
    "no credentials": lambda: (None, None),
    "the edge's word alone": lambda: (None, "alice"),
    "expired token": lambda: (token_for("alice", lifetime=-60), "alice"),
    "untrusted key": lambda: (_stranger_token("alice"), "alice"),
    "other audience": lambda: (token_for("alice", aud="elsewhere"), "alice"),
    "not a token": lambda: ("garbage", "alice"),
}


@pytest.mark.parametrize("header", NAMING_HEADERS)
async def test_every_rpc_refuses_an_unauthenticated_caller(stub: Any, header: str) -> None:
    expected = (grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")
    wrong = {}
    for method in METHODS:
        for case, credentials in UNAUTHENTICATED.items():
            got = await outcome(stub, method, *credentials(), header)
            if got != expected:
                wrong[method, case] = got
    assert wrong == {}


@pytest.mark.parametrize("header", NAMING_HEADERS)
async def test_every_rpc_denies_a_caller_naming_another_user(stub: Any, header: str) -> None:
    # Bob's valid token, asking to act as alice.
    expected = (grpc.StatusCode.PERMISSION_DENIED, "permission_denied")
    wrong = {}
    for method in METHODS:
        got = await outcome(stub, method, token_for("bob"), "alice", header)
        if got != expected:
            wrong[method] = got
    assert wrong == {}


async def test_every_rpc_lets_a_verified_caller_past_authentication(stub: Any) -> None:
    # The control: the same empty requests, correctly authenticated, reach the
    # RPC's own checks (so the refusals above are authentication's, not theirs).
    refused = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    wrong = {}
    for method in METHODS:
        status, code = await outcome(stub, method, token_for("alice"), "alice")
        if status in refused:
            wrong[method] = (status, code)
    assert wrong == {}


def test_the_cases_cover_every_rpc_of_the_service() -> None:
    # A streaming RPC would need a case of its own in `outcome`: fail until it has one.
    streaming = [m.name for m in SERVICE.methods if m.client_streaming or m.server_streaming]
    assert streaming == []
    assert len(METHODS) >= 11


async def test_a_token_of_another_user_reaches_only_that_users_sessions(stub: Any) -> None:
    opened = await stub.OpenSession(
        session_pb2.OpenSessionRequest(device_id="phone"), metadata=as_user("alice")
    )
    sid = opened.session.session_id
    read = session_pb2.GetSessionRequest(session_id=sid)
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.GetSession(read, metadata=_metadata(token_for("bob"), None))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.GetSession(read, metadata=_metadata(token_for("bob"), "alice"))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    got = await stub.GetSession(read, metadata=_metadata(token_for("alice"), None))
    assert got.user_id == "alice"


async def test_the_device_cap_is_cores_not_the_callers(core: Running) -> None:
    # An older edge still sends field 4 (max_devices) of ClaimDeviceRequest: it is
    # ignored, and core's own cap (1 here) holds.
    def old_request(device: bytes) -> bytes:
        join = bytes([0x18, session_pb2.PRESENCE_ACTION_JOIN])  # action = 3
        return b"\x0a" + bytes([len(device)]) + device + join + b"\x20\x64"  # max_devices=100

    async with grpc.aio.insecure_channel(f"127.0.0.1:{core.port}") as channel:
        claim: grpc.aio.UnaryUnaryMultiCallable[bytes, session_pb2.ClaimDeviceResponse]
        claim = channel.unary_unary(
            f"/{SERVICE.full_name}/ClaimDevice",
            response_deserializer=session_pb2.ClaimDeviceResponse.FromString,
        )
        first = await claim(old_request(b"a"), metadata=as_user("carol"), timeout=10)
        assert first.devices_online == 1
        with pytest.raises(grpc.aio.AioRpcError) as capped:
            await claim(old_request(b"b"), metadata=as_user("carol"), timeout=10)
        assert capped.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_health_answers_without_credentials(core: Running) -> None:
    await wait_serving(core.port, within=10, service=SERVICE.full_name)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{core.port}") as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE.full_name), timeout=5
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def _listed_services(port: int) -> set[str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in reflect.ServerReflectionInfo(iter([request])):
            return {s.name for s in reply.list_services_response.service}
    return set()


async def test_reflection_is_off_by_default(core: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as off:
        await _listed_services(core.port)
    assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_reflection_when_configured(pg_dsn: str, redis_url: str, amqp_url: str) -> None:
    config = core_config(pg_dsn, redis_url, amqp_url, reflection=True)
    async with running_core(config) as running:
        assert SERVICE.full_name in await _listed_services(running.port)


# -- with mTLS: which service calls, beside which user ------------------------


@pytest_asyncio.fixture
async def tls_core(
    pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Running, Pki]]:
    pki = Pki.create(tmp_path / "pki")
    config = core_config(pg_dsn, redis_url, amqp_url, **pki.core_settings())
    async with running_core(config) as running:
        yield running, pki


async def test_with_mtls_an_admitted_identity_with_a_token_gets_through(
    tls_core: tuple[Running, Pki],
) -> None:
    core, pki = tls_core
    refused = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    async with tls_stub_for(core.port, pki, pki.client("ws-edge")) as stub:
        wrong = {}
        for method in METHODS:
            status, code = await outcome(stub, method, token_for("alice"), "alice")
            if status in refused:
                wrong[method] = (status, code)
        assert wrong == {}
        # The certificate says which service; the token still says which user.
        assert await outcome(stub, "GetSession", None, None) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "unauthenticated",
        )


async def test_with_mtls_every_rpc_denies_an_identity_not_admitted(
    tls_core: tuple[Running, Pki],
) -> None:
    core, pki = tls_core
    expected = (grpc.StatusCode.PERMISSION_DENIED, "permission_denied")
    async with tls_stub_for(core.port, pki, pki.client("intruder")) as stub:
        wrong = {}
        for method in METHODS:
            got = await outcome(stub, method, token_for("alice"), "alice")
            if got != expected:
                wrong[method] = got
        assert wrong == {}


async def test_with_mtls_no_or_a_foreign_certificate_cannot_call_at_all(
    tls_core: tuple[Running, Pki], tmp_path: Path
) -> None:
    core, pki = tls_core
    foreign = Pki.create(tmp_path / "foreign").client("ws-edge")  # right name, wrong CA
    for client in (None, foreign):
        async with tls_stub_for(core.port, pki, client) as stub:
            for method in METHODS:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    request = getattr(
                        session_pb2, SERVICE.methods_by_name[method].input_type.name
                    )()
                    await getattr(stub, method)(request, metadata=as_user("alice"), timeout=5)
                # Refused at the handshake: the call never reaches core's code.
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, method


async def test_with_mtls_health_answers_on_its_plaintext_port(
    tls_core: tuple[Running, Pki],
) -> None:
    core, _ = tls_core
    assert core.health_port > 0
    await wait_serving(core.health_port, within=10, service=SERVICE.full_name)
    with pytest.raises(grpc.aio.AioRpcError) as plaintext:
        async with stub_for(core.port) as stub:
            await stub.GetSession(session_pb2.GetSessionRequest(), timeout=5)
    assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE
