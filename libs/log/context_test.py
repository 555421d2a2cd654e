"""bind() scopes fields to a block and to the asyncio task that made them."""

import asyncio

from libs.log.context import bind, bound_fields


def test_nothing_bound_by_default() -> None:
    assert dict(bound_fields()) == {}


def test_nested_blocks_add_override_and_restore() -> None:
    with bind(session_id="s-1", op_id="a"):
        with bind(op_id="b", request_id="r-9"):
            assert dict(bound_fields()) == {"session_id": "s-1", "op_id": "b", "request_id": "r-9"}
        assert dict(bound_fields()) == {"session_id": "s-1", "op_id": "a"}
    assert dict(bound_fields()) == {}


def test_restored_after_an_exception() -> None:
    try:
        with bind(session_id="s-1"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert dict(bound_fields()) == {}


def test_concurrent_tasks_do_not_see_each_other() -> None:
    async def handler(request_id: str, started: asyncio.Event, other: asyncio.Event) -> str:
        with bind(request_id=request_id):
            started.set()
            await other.wait()
            return str(bound_fields()["request_id"])

    async def main() -> list[str]:
        first, second = asyncio.Event(), asyncio.Event()
        return list(
            await asyncio.gather(handler("r-1", first, second), handler("r-2", second, first))
        )

    assert asyncio.run(main()) == ["r-1", "r-2"]
