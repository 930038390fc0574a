"""Pre-scale window math: cron expressions read in an IANA timezone, mapped to UTC instants.

Pure: no ORM, no clock. Every function takes the instant it reasons about.

How a cron is read: croniter walks *wall-clock* times (naive datetimes, so croniter's own DST
handling never runs), and each wall time is then placed on the timeline of the rule's zone:

- a wall time that does not exist (the spring-forward gap, e.g. 02:30 on the second Sunday of
  March in America/New_York) fires at the first valid instant after it: the end of the gap
  (03:00 local). Several firings in one gap collapse into that one instant;
- a wall time that happens twice (fall-back, 01:30 in November) fires once, at its first
  occurrence;
- a window lasts `duration` of elapsed time from its firing, whatever the wall clock does
  meanwhile (a 2-hour window across fall-back ends 2 real hours later).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter
from croniter.croniter import CroniterBadDateError

# How far to walk looking for a firing before deciding there is none (e.g. "0 0 30 2 *").
_SEARCH_STEPS = 2000


class WindowError(ValueError):
    """A cron expression or timezone that cannot be used. The message is one line for a user."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def parse_timezone(name: str) -> ZoneInfo:
    """The zone for an IANA region name; raises WindowError for anything else (abbreviations, offsets).

    The name is looked up in the tz database's list before any file is opened: ZoneInfo would
    otherwise open whatever path it is given (an over-long name raises OSError, not a lookup
    error), and it also opens legacy files ("EST", "posixrules"). The list also holds old
    abbreviations and aliases ("EST", "EST5EDT", "US/Eastern", "GB"); only region names
    (Area/Location) and UTC say where a rule's clock hangs, DST included.
    """
    shown = name if len(name) <= 64 else name[:61] + "..."
    if not name or name not in _known_zones():
        raise WindowError(f"'{shown}' is not an IANA timezone name (e.g. Europe/Berlin)", field="timezone")
    if not (name in ("UTC", "Etc/UTC") or name.split("/", 1)[0] in IANA_AREAS):
        raise WindowError(f"'{shown}' is not an IANA region time zone (e.g. Europe/Berlin, or UTC)", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise WindowError(f"'{shown}' is not an IANA timezone name (e.g. Europe/Berlin)", field="timezone")


IANA_AREAS = frozenset(
    {"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific"}
)
_ZONES: frozenset[str] | None = None


def _known_zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


CRON_FIELDS = (  # name, values, example
    ("minute", "0-59", "*/15 for every quarter hour"),
    ("hour", "0-23", "8-18 for office hours"),
    ("day-of-month", "1-31", "1,15"),
    ("month", "1-12 or JAN-DEC", "JUN-AUG"),
    ("day-of-week", "0-6 or SUN-SAT", "MON-FRI for weekdays"),
)


def _cron_problem(expr: str) -> str:
    """One sentence naming the field at fault. croniter's own messages repeat the expression and
    speak its internals ("[45 8 * * weekdays] is not acceptable"), so each field is tried alone."""
    parts = expr.split(" ")
    for i, ((name, allowed, example), part) in enumerate(zip(CRON_FIELDS, parts, strict=False)):
        alone = " ".join(part if j == i else "*" for j in range(len(CRON_FIELDS)))
        if not croniter.is_valid(alone):
            return (
                f"the {name} field \u201c{part}\u201d is not valid: use {allowed}, *, a list or a range "
                f"(e.g. {example})"
            )
    return f"{expr!r} is not a valid cron expression"


def validate_cron(expr: str) -> str:
    """The expression, normalised; raises WindowError unless it is a five-field cron (or @daily...)."""
    expr = " ".join((expr or "").split())
    if not expr:
        raise WindowError("a cron expression is required, e.g. 0 9 * * 1-5", field="cron")
    if not expr.startswith("@") and len(expr.split(" ")) != 5:
        raise WindowError(f"{expr!r} must have five fields: minute hour day-of-month month day-of-week", field="cron")
    if expr.startswith("@") and expr not in {
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    }:
        raise WindowError(f"{expr!r} is not a cron expression", field="cron")
    if not croniter.is_valid(expr):
        raise WindowError(_cron_problem(expr), field="cron")
    try:
        croniter(expr, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise WindowError(f"{expr!r} never fires", field="cron")
    return expr


def cron_and_zone_problems(expr: str, tz: str) -> dict[str, str]:
    """What is wrong with a cron expression and a zone name, by field ("cron", "timezone"); both at once."""
    problems = {}
    try:
        validate_cron(expr)
    except WindowError as exc:
        problems[exc.field] = str(exc)
    try:
        parse_timezone(tz)
    except WindowError as exc:
        problems[exc.field] = str(exc)
    return problems


# --------------------------------------------------------------------------- wall clock <-> instant


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant a naive local wall time fires at (gap: the gap's end; overlap: the first)."""
    if _exists(wall, zone):
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    # In a gap. With fold=0 zoneinfo reads the wall time with the offset before the jump, with
    # fold=1 with the one after; the transition lies between the two readings. Find the first
    # second at which the zone's offset is the new one: that is the first valid instant.
    late = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    early = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(early, late), max(early, late)
    after_offset = zone.utcoffset(wall.replace(fold=1))
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return hi if hi.astimezone(zone).utcoffset() == after_offset else lo


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")


# --------------------------------------------------------------------------- firings


def firings_after(expr: str, tz: str, after: datetime) -> Iterator[datetime]:
    """Firing instants (UTC, strictly increasing) strictly after `after`."""
    _require_aware(after)
    zone = parse_timezone(tz)
    # Start a little before: a gap firing whose wall time precedes `after`'s wall time can
    # still land after it (the gap end).
    start = _wall(after, zone) - timedelta(hours=3)
    it = croniter(expr, start)
    last = None
    for _ in range(_SEARCH_STEPS * 50):
        try:
            wall = it.get_next(datetime)
        except CroniterBadDateError:
            return
        instant = to_instant(wall, zone)
        if instant <= after or instant == last:
            continue
        last = instant
        yield instant


def next_firings(expr: str, tz: str, after: datetime, count: int = 5) -> list[datetime]:
    result = []
    for instant in firings_after(expr, tz, after):
        result.append(instant)
        if len(result) >= count:
            break
    return result


def latest_firing(expr: str, tz: str, at: datetime) -> datetime | None:
    """The most recent firing instant at or before `at`, or None if there is none nearby."""
    _require_aware(at)
    zone = parse_timezone(tz)
    # Walk wall times backwards from a little after `at` (a gap firing maps later than its wall
    # time); the mapping is monotonic, so the first instant <= at is the latest.
    it = croniter(expr, _wall(at, zone) + timedelta(hours=3, seconds=1))
    for _ in range(_SEARCH_STEPS):
        try:
            wall = it.get_prev(datetime)
        except CroniterBadDateError:
            return None
        instant = to_instant(wall, zone)
        if instant <= at:
            return instant
    return None


@dataclass(frozen=True)
class Window:
    start: datetime  # UTC
    end: datetime  # UTC, exclusive

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


def open_window(expr: str, tz: str, duration_minutes: int, at: datetime) -> Window | None:
    """The window of the latest firing, if it is still open at `at`."""
    start = latest_firing(expr, tz, at)
    if start is None:
        return None
    window = Window(start, start + timedelta(minutes=duration_minutes))
    return window if window.contains(at) else None


def local(instant: datetime, tz: str) -> datetime:
    """The instant on the zone's wall clock (aware), for display."""
    return instant.astimezone(parse_timezone(tz))
