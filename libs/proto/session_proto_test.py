"""The generated contract imports and carries what core and edge rely on."""

from syncbridge.session.v1 import session_pb2, session_pb2_grpc


def test_service_has_every_operation() -> None:
    service = session_pb2.DESCRIPTOR.services_by_name["SessionService"]
    assert {method.name for method in service.methods} == {
        "OpenSession",
        "GetSession",
        "ApplyUpdate",
        "ApplyUpdates",
        "Handoff",
        "ChangesSince",
        "EndSession",
        "ListSessions",
        "UpdatePresence",
        "GetPresence",
        "ClaimDevice",
    }
    assert hasattr(session_pb2_grpc, "SessionServiceStub")
    assert hasattr(session_pb2_grpc, "SessionServiceServicer")


def test_change_round_trips() -> None:
    change = session_pb2.Change(
        event_id="e1",
        session_id="s1",
        epoch=2,
        version=7,
        kind=session_pb2.CHANGE_KIND_UPDATE,
        patch_json='{"a":1}',
    )
    decoded = session_pb2.Change.FromString(change.SerializeToString())
    assert decoded == change
    assert decoded.version == 7
