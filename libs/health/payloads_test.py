"""Bodies match the seed's health-check outputs exactly."""

import json
from datetime import UTC, datetime, timedelta, timezone

from libs.health.payloads import live_payload, ready_payload, rfc3339_seconds

_SEED_TIME = datetime(2026, 2, 11, 20, 55, 0, 730000, tzinfo=UTC)


def _compact(body: object) -> str:
    return json.dumps(body, separators=(",", ":"))


def test_live_matches_seed() -> None:
    assert _compact(live_payload(1200.9)) == '{"status":"alive","uptime":"1200s"}'


def test_ready_matches_seed() -> None:
    status, body = ready_payload(True, {"redis": True}, _SEED_TIME)
    assert status == 200
    assert _compact(body) == '{"status":"healthy","timestamp":"2026-02-11T20:55:00Z"}'


def test_unhealthy_names_each_check() -> None:
    status, body = ready_payload(False, {"postgres": True, "redis": False}, _SEED_TIME)
    assert status == 503
    assert _compact(body) == (
        '{"status":"unhealthy","timestamp":"2026-02-11T20:55:00Z",'
        '"checks":{"postgres":true,"redis":false}}'
    )


def test_draining_wins() -> None:
    status, body = ready_payload(True, {}, _SEED_TIME, draining=True)
    assert status == 503
    assert body == {"status": "draining", "timestamp": "2026-02-11T20:55:00Z"}


def test_timestamp_is_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert rfc3339_seconds(datetime(2026, 2, 11, 21, 55, tzinfo=paris)) == "2026-02-11T20:55:00Z"
