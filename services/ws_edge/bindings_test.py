"""Bind on a user's first device, unbind on the last."""

from __future__ import annotations

import pytest

from services.ws_edge.bindings import Action, BindingCounts


def test_first_binds_last_unbinds() -> None:
    counts = BindingCounts()
    assert counts.acquire("alice") is Action.BIND
    assert counts.acquire("alice") is Action.NONE
    assert counts.acquire("bob") is Action.BIND
    assert sorted(counts.users()) == ["alice", "bob"]
    assert counts.release("alice") is Action.NONE
    assert counts.release("alice") is Action.UNBIND
    assert counts.count("alice") == 0
    assert counts.users() == ["bob"]
    assert counts.acquire("alice") is Action.BIND


def test_release_without_acquire_is_a_bug() -> None:
    with pytest.raises(ValueError):
        BindingCounts().release("alice")
