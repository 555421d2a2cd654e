"""The fault matrix's checker: it must see a lost ack, a duplicate and a slow recovery."""

from __future__ import annotations

from tests.e2e.chaos_history import Acked, Applied, History, Row, check


def history() -> History:
    return History(
        acked=[
            Acked("s", "phone", "op1", 1, 2, at=1.0),
            Acked("s", "phone", "op2", 1, 3, at=5.0),
            Acked("s", "laptop", "op3", 1, 4, at=6.0),
        ],
        applied=[
            Applied("s", "phone", 1, 2, at=1.0),
            Applied("s", "phone", 1, 3, at=5.0),
            Applied("s", "laptop", 1, 2, at=1.1),
            Applied("s", "laptop", 1, 3, at=5.5),
            Applied("s", "laptop", 1, 4, at=6.0),
        ],
    )


ROWS = [Row("s", 1, 1, None), Row("s", 1, 2, "op1"), Row("s", 1, 3, "op2"), Row("s", 1, 4, "op3")]


def test_a_clean_history_has_nothing_lost_or_doubled() -> None:
    verdict = check(history(), ROWS)
    assert (verdict.acked, verdict.lost, verdict.dupes) == (3, [], 0)


def test_an_ack_missing_from_the_database_or_at_another_version_is_lost() -> None:
    moved = [ROWS[0], ROWS[1], Row("s", 1, 5, "op2"), ROWS[3]]
    assert [a.op_id for a in check(history(), ROWS[:3]).lost] == ["op3"]
    assert [a.op_id for a in check(history(), moved).lost] == ["op2"]


def test_a_version_twice_in_the_database_or_applied_twice_is_a_dupe() -> None:
    assert check(history(), [*ROWS, Row("s", 1, 4, "op9")]).duplicate_versions == [("s", 1, 4)]
    assert check(history(), [*ROWS, Row("s", 1, 9, "op1")]).duplicate_ops == ["s/op1"]
    twice = history()
    twice.applied.append(Applied("s", "laptop", 1, 3, at=7.0))
    assert check(twice, ROWS).dupes == 1


def test_recovery_waits_for_an_ack_and_for_every_version_acked_before_the_clearing() -> None:
    devices = {("s", "phone"), ("s", "laptop")}
    # Cleared at 4.5: phone's next ack came at 5.0, the laptop's at 6.0.
    assert check(history(), ROWS).dupes == 0
    assert history().recovery_seconds(4.5, devices) == 1.5
    # Cleared at 5.2: the phone has had no ack since, so not yet recovered.
    assert history().recovery_seconds(5.2, devices) is None
    # The laptop saw version 3 (acked before 5.2) at 5.5 but had its own ack at 6.0.
    late = history()
    late.acked.append(Acked("s", "phone", "op4", 1, 5, at=9.0))
    late.applied.append(Applied("s", "phone", 1, 5, at=9.0))
    assert late.recovery_seconds(5.2, devices) == 9.0 - 5.2
