"""Window math: cron in an IANA timezone, DST gaps and overlaps, windows. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling import windows
from scaling.windows import WindowError, latest_firing, next_firings, open_window


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "tz", "after", "expected"),
    [
        # Spring forward, America/New_York 2024-03-10: 02:00 EST jumps to 03:00 EDT.
        ("30 2 * * *", "America/New_York", utc(2024, 3, 9, 12), [utc(2024, 3, 10, 7, 0), utc(2024, 3, 11, 6, 30)]),
        # Spring forward, Europe/Berlin 2024-03-31: 02:00 CET jumps to 03:00 CEST.
        ("30 2 * * *", "Europe/Berlin", utc(2024, 3, 30, 12), [utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)]),
        # Fall back, America/New_York 2024-11-03: 01:30 happens twice; it fires at the first.
        ("30 1 * * *", "America/New_York", utc(2024, 11, 2, 12), [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)]),
        # Fall back, Europe/Berlin 2024-10-27: 02:30 happens twice (CEST, then CET).
        ("30 2 * * *", "Europe/Berlin", utc(2024, 10, 26, 12), [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]),
        # Every 30 minutes through the New York gap: 02:00 and 02:30 collapse into 03:00 EDT.
        (
            "*/30 * * * *",
            "America/New_York",
            utc(2024, 3, 10, 6, 15),
            [utc(2024, 3, 10, 6, 30), utc(2024, 3, 10, 7, 0), utc(2024, 3, 10, 7, 30)],
        ),
        # Hourly through the New York overlap: 01:00 fires once (EDT), then 02:00 EST.
        (
            "0 * * * *",
            "America/New_York",
            utc(2024, 11, 3, 4, 30),
            [utc(2024, 11, 3, 5, 0), utc(2024, 11, 3, 7, 0), utc(2024, 11, 3, 8, 0)],
        ),
        # Weekdays 09:00 in Berlin, summer time.
        ("0 9 * * 1-5", "Europe/Berlin", utc(2025, 6, 6, 8), [utc(2025, 6, 9, 7, 0), utc(2025, 6, 10, 7, 0)]),
        ("@daily", "UTC", utc(2025, 1, 1, 0, 0), [utc(2025, 1, 2), utc(2025, 1, 3)]),
    ],
)
def test_it_maps_cron_firings_to_instants(cron, tz, after, expected):
    assert next_firings(cron, tz, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("cron", "tz", "at", "expected"),
    [
        ("30 2 * * *", "America/New_York", utc(2024, 3, 10, 7, 0), utc(2024, 3, 10, 7, 0)),
        ("30 2 * * *", "America/New_York", utc(2024, 3, 10, 6, 59), utc(2024, 3, 9, 7, 30)),
        # In the second 01:xx of a fall-back night the latest firing is still the first 01:30.
        ("30 1 * * *", "America/New_York", utc(2024, 11, 3, 6, 45), utc(2024, 11, 3, 5, 30)),
        ("0 9 * * 1-5", "Europe/Berlin", utc(2025, 6, 9, 6, 59), utc(2025, 6, 6, 7, 0)),
        ("0 0 30 2 *", "UTC", utc(2025, 6, 9), None),
    ],
)
def test_it_finds_the_latest_firing(cron, tz, at, expected):
    assert latest_firing(cron, tz, at) == expected


def test_a_window_is_open_from_its_firing_for_its_duration_of_real_time():
    # 00:30 EDT + 3 h across fall-back ends at 02:30 EST, 3 real hours later.
    start = utc(2024, 11, 3, 4, 30)
    window = open_window("30 0 * * *", "America/New_York", 180, start)
    assert window == windows.Window(start, start + timedelta(hours=3))
    assert open_window("30 0 * * *", "America/New_York", 180, start + timedelta(hours=3)) is None
    assert open_window("30 0 * * *", "America/New_York", 180, start - timedelta(seconds=1)) is None


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("", "required"),
        ("0 9 * *", "five fields"),
        ("0 9 * * * *", "five fields"),
        ("61 * * * *", "the minute field “61” is not valid: use 0-59"),
        ("0 25 * * *", "the hour field “25” is not valid: use 0-23"),
        ("45 8 * * weekdays", "the day-of-week field “weekdays” is not valid: use 0-6 or SUN-SAT"),
        ("every day", "five fields"),
        ("@sometimes", "not a cron"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_it_refuses_bad_cron_expressions(cron, message):
    with pytest.raises(WindowError) as exc:
        windows.validate_cron(cron)
    assert message in str(exc.value) and exc.value.field == "cron"
    assert str(exc.value).count(cron or "\0") <= 1, "the expression is not repeated"


@pytest.mark.parametrize(
    "name",
    [
        "Berlin",
        "Mars/Olympus",
        "+02:00",
        "",
        " UTC",
        "../etc/passwd",
        "CEST",
        "EST",
        "EST5EDT",
        "US/Eastern",
        "GB",
        "Etc/GMT+5",
        "posixrules",
        "Europe/Nowhere",
    ],
)
def test_it_refuses_names_that_are_not_iana_timezones(name):
    with pytest.raises(WindowError) as exc:
        windows.parse_timezone(name)
    assert exc.value.field == "timezone"


@pytest.mark.parametrize(
    "name",
    [
        "UTC",
        "Etc/UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/Argentina/Buenos_Aires",
    ],
)
def test_it_accepts_iana_timezones(name):
    assert windows.parse_timezone(name).key == name


def test_it_refuses_naive_instants():
    with pytest.raises(ValueError):
        latest_firing("0 9 * * *", "UTC", datetime(2025, 1, 1))


ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu", "America/Santiago"]
CRONS = ["0 9 * * 1-5", "30 2 * * *", "*/20 * * * *", "15 1 * * 0", "0 */3 * * *", "45 23 28-31 * *"]
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(cron=st.sampled_from(CRONS), tz=st.sampled_from(ZONES), at=instants)
def test_firings_are_strictly_increasing_and_latest_firing_leaves_none_in_between(cron, tz, at):
    upcoming = next_firings(cron, tz, at, 4)
    assert all(f > at for f in upcoming)
    assert upcoming == sorted(set(upcoming))
    latest = latest_firing(cron, tz, at)
    assert latest is not None and latest <= at
    # Nothing fires between the latest firing and `at`: the next one after it is past `at`.
    assert next_firings(cron, tz, latest, 1)[0] > at


@settings(max_examples=100, deadline=None)
@given(cron=st.sampled_from(CRONS), tz=st.sampled_from(ZONES), at=instants)
def test_a_firing_happens_at_its_wall_time_unless_that_time_did_not_exist(cron, tz, at):
    from croniter import croniter

    [firing] = next_firings(cron, tz, at, 1)
    wall = windows.local(firing, tz).replace(tzinfo=None)
    if croniter.match(cron, wall):
        return
    # Otherwise it was moved out of a gap: one minute earlier on the wall clock is not its zone's time.
    zone = windows.parse_timezone(tz)
    before = firing - timedelta(seconds=1)
    assert before.astimezone(zone).utcoffset() != firing.astimezone(zone).utcoffset()
