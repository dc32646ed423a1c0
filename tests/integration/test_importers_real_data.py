"""Importers on the real data sets next to the repository (``<repo>/../shared/data``): the Aveiro wtmp sample
with its reference session CSV, and the Datadog git-activity day sessions. Moved out of tests/unit because
``ansible-test units`` runs on a copy of the collection where ``../shared`` does not exist."""

import collections
import csv
import datetime
import pathlib

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import importers
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
WTMP_DIR = SHARED / "logins-ua-wtmp"
GIT_DIR = SHARED / "git-activity-datadog"
UTC = datetime.timezone.utc

needs_wtmp = pytest.mark.skipif(not (WTMP_DIR / "wtmp").is_file(),
                                reason="shared data set %s is absent (real wtmp sample)" % WTMP_DIR)
needs_git = pytest.mark.skipif(not (GIT_DIR / "sessions.csv.gz").is_file(),
                               reason="shared data set %s is absent (git-activity sessions)" % GIT_DIR)


def iso(text):
    return datetime.datetime.fromisoformat(text) if text else None


@pytest.fixture(name="store")
def store_fixture(tmp_path):
    with HistoryStore(tmp_path / "history.sqlite3") as s:
        yield s


@needs_wtmp
def test_wtmp_pairing_matches_reference_csv(store):
    rows, report = importers.get("wtmp")(str(WTMP_DIR / "wtmp"))
    with open(WTMP_DIR / "ua_so_wtmp_sessions_2019.csv", newline="") as handle:
        expected = list(csv.DictReader(handle))
    assert len(rows) == len(expected) == 1357
    assert report.read == 2725 and report.rejected == {}
    reasons = collections.Counter(r["end_reason"] for r in rows)
    assert reasons == collections.Counter(e["end_reason"] for e in expected)
    assert reasons == {"logout": 1351, "superseded": 3, "system_reboot": 2, "still_open_at_end": 1}
    mine = sorted((r["login_name"], r["tty"], r["remote_host"], r["start"], r["end_reason"]) for r in rows)
    ref = sorted((e["user"], e["tty"], e["remote_host"], iso(e["login"]), e["end_reason"]) for e in expected)
    assert mine == ref
    ends = {(r["login_name"], r["tty"], r["start"]): r["end"] for r in rows}
    for e in expected:
        end = ends[(e["user"], e["tty"], iso(e["login"]))]
        if e["end_reason"] == "logout":
            assert end == iso(e["logout"])
        elif e["end_reason"] == "still_open_at_end":
            assert end is None
        else:  # the reference leaves these blank; we close them at the superseding login / the reboot
            assert end is not None and end >= iso(e["login"])
    stored = store.add_sessions(rows, "wtmp")
    assert (stored.added, stored.rejected) == (1357, {})
    assert store.add_sessions(rows, "wtmp").duplicates == 1357
    assert len(store.users()) == len({e["user"] for e in expected})


@needs_git
def test_git_activity_real_file(store):
    rows, report = importers.get("git_activity")(str(GIT_DIR / "sessions.csv.gz"))
    assert (report.read, report.parsed, report.rejected) == (7108, 7108, {})
    assert len({r["user"] for r in rows}) == 84
    first = rows[0]
    assert first["user"] == "u0001" and first["tz_offset_min"] == 60
    assert first["start"] == datetime.datetime(2026, 1, 19, 9, 10, 22, tzinfo=UTC)
    stored = store.add_sessions(rows, "git_activity")
    # One person-day overlaps the previous day after a time-zone change (u0073, 2026-07-08): counted, not stored.
    assert stored.added + stored.rejected_total == 7108
    assert stored.rejected == {"overlap": 1}
    assert store.add_sessions(rows, "git_activity").added == 0
    assert len(store.users()) == 84
    assert store.sessions("u0001")[0]["tz_offset_min"] == 60
