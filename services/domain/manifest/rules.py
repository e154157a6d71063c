"""The rules a manifest's values follow that its types cannot say, each a pure function or
constant, shared by the manifest's checks and the api's installation config checks (which
apply the same rules to a config's overrides): name forms, cron schedules, backfill periods.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

from croniter import CroniterError, croniter  # type: ignore[import-untyped]

# Reads fire at most every 10 minutes, schema checks at most hourly (the reference's limits).
READ_SCHEDULE_MIN_MINUTES = 10
WATCH_SCHEMA_MIN_MINUTES = 60

INTEGRATION_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
INTEGRATION_NAME_RULE = "must be 1-64 lowercase letters, digits, '-' or '_'"
DISPLAY_NAME_MAX = 100
# Provider object and field names are the provider's own, so almost anything goes; what
# never does is an empty name, whitespace around it, or control characters in it.
_NAME = re.compile(r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,254}[^\s\x00-\x1f\x7f])?$")
NAME_RULE = "must be 1-256 characters, without control characters or whitespace at either end"
# Nested fields: $['address']['city'].
_JSON_PATH = re.compile(r"^\$(?:\['[^'\]\x00-\x1f]+'\])+$")
JSON_PATH_RULE = "a nested field is written $['parent']['child']"
# The builder's names (mapToName) become JSON keys of delivered records.
_MAPPED_NAME = re.compile(r"^[^\s\x00-\x1f\x7f]{1,256}$")
MAPPED_NAME_RULE = "must be 1-256 characters without whitespace or control characters"


# Cached: checking one expression walks up to a day of fire times (about 10 ms), and a
# manifest repeats its few schedules over many objects.
@functools.lru_cache(maxsize=1024)
def schedule_problem(expression: str, min_minutes: int) -> str | None:
    """Why a cron expression cannot be a schedule, or None. It must have five fields
    (minute hour day-of-month month day-of-week) and no two consecutive fire times may be
    closer than min_minutes."""
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"{expression!r} is not a five-field cron expression "
            "(minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(expression)
    except (CroniterError, ValueError) as error:
        return f"{expression!r} is not a valid cron expression: {error}"
    if next(_fire_times(expression, _WINDOW_START), _WINDOW_END) >= _WINDOW_END:
        return f"{expression!r} never fires (no such date)"
    gap = _min_gap_minutes(fields)
    if gap is not None and gap < min_minutes:
        every = f"{min_minutes} minutes" if min_minutes < 60 else f"{min_minutes // 60} hour(s)"
        return (
            f"{expression!r} fires {gap} minute(s) apart at its closest; "
            f"schedules may fire at most every {every}"
        )
    return None


# A day at which no cron field is odd, and four years from it: every day-of-month, month
# and leap-day combination occurs in the window.
_WINDOW_START = datetime.datetime(2000, 1, 1)
_WINDOW_END = datetime.datetime(2004, 1, 1)


def _fire_times(expression: str, start: datetime.datetime) -> Iterator[datetime.datetime]:
    schedule = croniter(expression, start - datetime.timedelta(minutes=1))
    while True:
        try:
            yield schedule.get_next(datetime.datetime)
        except CroniterError:
            return  # no fire time within croniter's search horizon (e.g. 31 February)


def _min_gap_minutes(fields: list[str]) -> int | None:
    """The smallest gap in minutes between consecutive fire times, or None when the
    expression fires at most once in four years.

    Cron's times of day are the same on every day it fires, so consecutive fire times are
    either consecutive times of one day, or the last time of a day and the first of the
    next fire day. The times of day come from one day of `minute hour * * *`; only when
    the overnight gap is the smaller one does it matter whether two fire days are ever
    adjacent, which the days of `0 0 dom month dow` over a four-year window tell."""
    minute, hour, day_of_month, month, day_of_week = fields
    day_end = _WINDOW_START + datetime.timedelta(days=1)
    times: list[int] = []
    smallest: int | None = None
    for moment in _fire_times(f"{minute} {hour} * * *", _WINDOW_START):
        if moment >= day_end:
            break
        at = moment.hour * 60 + moment.minute
        if times:
            gap = at - times[-1]
            smallest = gap if smallest is None else min(smallest, gap)
        times.append(at)
    if not times:
        return None
    overnight = 24 * 60 - times[-1] + times[0]
    if smallest is not None and smallest <= overnight:
        return smallest
    previous: datetime.datetime | None = None
    for day in _fire_times(f"0 0 {day_of_month} {month} {day_of_week}", _WINDOW_START):
        if day >= _WINDOW_END:
            break
        if previous is not None and day - previous == datetime.timedelta(days=1):
            return overnight
        previous = day
    return smallest


def backfill_problems(period: Any) -> dict[str, str]:
    """Problems of a DefaultPeriod (the manifest's or a config's), keyed by the field path
    below it ("" for the period itself)."""
    has_days = period.HasField("days")
    full = period.HasField("full_history") and period.full_history
    if has_days and period.HasField("full_history"):
        return {"": "set either days or fullHistory, not both"}
    if has_days and period.days < 0:
        return {"days": f"must be 0 or more (found {period.days})"}
    if not has_days and not full:
        return {"": "set days (0 or more) or fullHistory: true"}
    return {}


def is_field_name(name: str) -> bool:
    """A provider field name: a plain name, or a nested field in JSONPath brackets."""
    if name.startswith("$"):
        return bool(_JSON_PATH.match(name))
    return bool(_NAME.match(name))


def is_object_name(name: str) -> bool:
    return bool(_NAME.match(name))


def is_mapped_name(name: str) -> bool:
    return bool(_MAPPED_NAME.match(name))


def suggestion(name: str, known: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the closest known name, or ""."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
