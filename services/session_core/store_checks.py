"""What the store refuses before it touches PostgreSQL, and how paths are stored: pure.

Every refusal is a StoreError with its stable code (records.py), raised before
a transaction starts, so a malformed request never holds a row lock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from libs.merge_patch import merge_patch
from services.session_core.records import InvalidArgument, NotFound, TooLarge, UpdateRequest

# op_ids are client-chosen and indexed: bounded as the edge bounds them.
MAX_OP_ID_LENGTH = 128


def encode_paths(paths: frozenset[tuple[str, ...]]) -> list[str]:
    """Changed paths as the change log's text[] holds them: JSON arrays, sorted."""
    return sorted(json.dumps(list(path)) for path in paths)


def decode_paths(paths: Sequence[str]) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(json.loads(path)) for path in paths)


def session_uuid(session_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(session_id)
    except ValueError:
        # An id that cannot exist is simply not found: no oracle for guessing.
        raise NotFound("session not found") from None


def check_text(field: str, value: str) -> None:
    """PostgreSQL text cannot hold U+0000: refused here, not by the database."""
    if "\x00" in value:
        raise InvalidArgument(f"{field}: contains U+0000")


def check_op_id(op_id: str) -> None:
    if not op_id:
        raise InvalidArgument("op_id: required")
    if len(op_id) > MAX_OP_ID_LENGTH:
        raise InvalidArgument(f"op_id: longer than {MAX_OP_ID_LENGTH} characters")
    check_text("op_id", op_id)


def check_state_size(state: Any, max_bytes: int) -> None:
    if merge_patch.json_size(state) > max_bytes:
        raise TooLarge(f"state: larger than {max_bytes} bytes")


def check_initial_state(state: Any, max_bytes: int) -> None:
    """A new session's state: a valid merge document within the size limit."""
    try:
        merge_patch.validate_patch(state, field="initial_state_json")
    except merge_patch.PatchError as error:
        raise InvalidArgument(str(error)) from None
    check_state_size(state, max_bytes)


def check_update(request: UpdateRequest, max_patch_bytes: int) -> None:
    """Refuses a malformed update before it joins a batch."""
    check_op_id(request.op_id)
    check_text("device_id", request.device_id)
    try:
        merge_patch.validate_patch(request.patch)
    except merge_patch.PatchError as error:
        raise InvalidArgument(str(error)) from None
    if merge_patch.json_size(request.patch) > max_patch_bytes:
        raise TooLarge(f"patch_json: larger than {max_patch_bytes} bytes")
