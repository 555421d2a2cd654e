"""Fields bound to the current task or thread, added to every log line made inside.

contextvars follow asyncio tasks: each task sees what was bound where it was
created, and a binding made in one request handler never leaks into another.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

_EMPTY: Mapping[str, object] = MappingProxyType({})
_FIELDS: ContextVar[Mapping[str, object]] = ContextVar("libs.log.fields")


@contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Adds `fields` (e.g. session_id, op_id, request_id) to log lines inside the block.

    Nested blocks add to, and may override, the outer fields; leaving a block
    restores exactly what was bound before it.
    """
    token = _FIELDS.set(MappingProxyType({**bound_fields(), **fields}))
    try:
        yield
    finally:
        _FIELDS.reset(token)


def bound_fields() -> Mapping[str, object]:
    """The fields bound in the current context (read-only)."""
    return _FIELDS.get(_EMPTY)
