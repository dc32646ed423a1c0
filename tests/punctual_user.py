"""The punctual user of issue 13: logs in at 08:00 and out at 17:00 (each uniform within +-10 min) on every
weekday, local time = UTC. Deterministic (seeded), plain data for unit and integration tests alike."""

import datetime as dt
import random
import statistics

UTC = dt.timezone.utc
FIRST = dt.date(2026, 9, 28)      # a Monday
WEEKS = 8
PLANNED = FIRST + dt.timedelta(weeks=WEEKS)          # the Monday after the history
NOW = dt.datetime.combine(PLANNED, dt.time(0, 0), tzinfo=UTC) - dt.timedelta(hours=3)   # Sunday 21:00


def _day(rng, day):
    login = dt.datetime.combine(day, dt.time(8, 0), tzinfo=UTC) + dt.timedelta(seconds=rng.uniform(-600, 600))
    logout = dt.datetime.combine(day, dt.time(17, 0), tzinfo=UTC) + dt.timedelta(seconds=rng.uniform(-600, 600))
    return login, logout


def sessions(user="punctual", seed=13, days_after=5):
    """``(history, upcoming)``: session rows of the 8 weeks before ``PLANNED`` and of the ``days_after`` days
    from it (what the user will do; never shown to the planner)."""
    rng = random.Random(seed)
    history, upcoming = [], []
    for k in range(WEEKS * 7 + days_after):
        day = FIRST + dt.timedelta(days=k)
        if day.weekday() >= 5:
            continue
        login, logout = _day(rng, day)
        row = {"user": user, "desktop": "desk-" + user, "start": login, "end": logout, "source": "csv",
               "tz_offset_min": 0}
        (history if day < PLANNED else upcoming).append(row)
    return history, upcoming


def minutes_of_day(moment):
    return moment.hour * 60 + moment.minute + moment.second / 60.0


def earliest_recent_arrival(history, weeks=4):
    recent = [r["start"] for r in history if r["start"].date() >= PLANNED - dt.timedelta(weeks=weeks)]
    return min(minutes_of_day(t) for t in recent)


def median_arrival(history):
    return statistics.median(minutes_of_day(r["start"]) for r in history)


def idle_warm_hours_per_working_day(user_plan, upcoming):
    """Warm time without the user, per working day, from the plan's sessions and what the user then does:
    from the wake to the real login when the user comes that day (later the desktop is in use, and it is
    released at logout), from the wake to the planned release when they do not. Also returns the logins that
    found their desktop asleep (came before the wake)."""
    parse = _parse
    logins = {r["start"].date(): r["start"] for r in upcoming}
    idle = 0.0
    missed = []
    days = set()
    for session in user_plan["sessions"]:
        wake, release = parse(session["wake"]), parse(session["release"])
        day = wake.date()
        login = logins.get(day)
        if login is not None and login < wake:
            missed.append(login)
        elif login is not None and login < release:
            idle += (login - wake).total_seconds() / 3600.0
        else:
            idle += (release - wake).total_seconds() / 3600.0
        days.add(day)
    working = sum(1 for d in logins if min(days or [d]) <= d <= max(days or [d]))
    return idle / max(working, 1), missed


def _parse(text):
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
