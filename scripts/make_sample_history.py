"""Write the bundled sample history (playbooks/files/sample_history.csv) that the demo forecasts from.

Synthetic on purpose and reproducible (fixed seed): two users with different habits, six weeks that end on
Friday 2026-11-13, so the demo's clock (Monday 2026-11-16 00:00 UTC) forecasts their next week.
    python scripts/make_sample_history.py
"""

import csv
import datetime as dt
import pathlib
import random

OUT = pathlib.Path(__file__).resolve().parent.parent / "playbooks" / "files" / "sample_history.csv"
FIRST_DAY = dt.date(2026, 10, 5)  # a Monday
WEEKS = 6
HABITS = {
    # user: (weekdays, login hour, login sd (h), logout hour, logout sd (h), chance of a day off)
    "demo-alice": ((0, 1, 2, 3, 4), 8.5, 0.3, 17.25, 0.5, 0.08),
    "demo-carol": ((0, 2, 3), 13.0, 0.5, 18.0, 0.6, 0.15),
}


def at(day, hour):
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.timezone.utc) + dt.timedelta(hours=hour)


def main():
    rng = random.Random(20261116)
    rows = []
    for user, (weekdays, login, login_sd, logout, logout_sd, off) in HABITS.items():
        for offset in range(WEEKS * 7):
            day = FIRST_DAY + dt.timedelta(days=offset)
            if day.weekday() not in weekdays or rng.random() < off:
                continue
            start = at(day, rng.gauss(login, login_sd))
            end = at(day, max(rng.gauss(logout, logout_sd), login + 1.0))
            rows.append((user, start, end))
    rows.sort(key=lambda row: (row[1], row[0]))
    with OUT.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")  # LF: ansible-test line-endings
        writer.writerow(["user", "start", "end", "desktop"])
        for user, start, end in rows:
            writer.writerow([user, start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "shadowdesk-demo-%s" % user])
    print("%d sessions -> %s" % (len(rows), OUT))


if __name__ == "__main__":
    main()
