from __future__ import annotations

import datetime as dt
import zoneinfo

from sidecar.quota.windows import pick, window_edges

UTC = zoneinfo.ZoneInfo("UTC")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def at(zone: zoneinfo.ZoneInfo, *args: int) -> float:
    return dt.datetime(*args, tzinfo=zone).timestamp()


def ms(zone: zoneinfo.ZoneInfo, *args: int) -> int:
    return round(at(zone, *args) * 1000)


def test_minute_edges() -> None:
    edges = window_edges("minute", at(UTC, 2026, 11, 21, 8, 30, 59), UTC)
    assert edges[1] == ms(UTC, 2026, 11, 21, 8, 30) and edges[2] - edges[1] == 60_000
    assert edges[0] == edges[1] - 60_000 and edges[3] == edges[2] + 60_000


def test_day_is_local_midnight_in_the_zone() -> None:
    now = at(UTC, 2026, 11, 21, 23, 30)  # already the 22nd in Berlin
    assert window_edges("day", now, BERLIN)[1] == ms(BERLIN, 2026, 11, 22)
    assert window_edges("day", now, UTC)[1] == ms(UTC, 2026, 11, 21)


def test_day_across_daylight_saving_is_23_or_25_hours() -> None:
    spring = window_edges("day", at(BERLIN, 2026, 3, 29, 12), BERLIN)
    autumn = window_edges("day", at(BERLIN, 2026, 10, 25, 12), BERLIN)
    assert spring[2] - spring[1] == 23 * 3_600_000
    assert autumn[2] - autumn[1] == 25 * 3_600_000


def test_month_edges_and_year_rollover() -> None:
    edges = window_edges("month", at(BERLIN, 2026, 12, 31, 23, 59), BERLIN)
    assert edges == (
        ms(BERLIN, 2026, 11, 1),
        ms(BERLIN, 2026, 12, 1),
        ms(BERLIN, 2027, 1, 1),
        ms(BERLIN, 2027, 2, 1),
    )
    march = window_edges("month", at(UTC, 2026, 3, 1), UTC)
    assert march[0] == ms(UTC, 2026, 2, 1) and march[1] == ms(UTC, 2026, 3, 1)


def test_pick_clamps_to_the_known_windows() -> None:
    edges = (0, 10, 20, 30)
    assert pick(edges, -5) == (0, 10)
    assert pick(edges, 10) == (10, 20)
    assert pick(edges, 29) == (20, 30)
    assert pick(edges, 99) == (20, 30)
