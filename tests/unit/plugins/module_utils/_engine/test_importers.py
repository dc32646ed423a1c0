"""Importers on real sample files: the Aveiro wtmp and the Datadog git-activity set from ../shared, plus small
CSV / virsh-event / PVE-task / ICS samples in tests/fixtures/history (the virsh sample was captured from a real
libvirtd with a minimal VNC client, see the fixture's domains ``sdhist-*``)."""

import collections
import csv
import datetime
import pathlib

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import importers
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import ConsentRequired, HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

ROOT = pathlib.Path(__file__).resolve().parents[5]
FIXTURES = ROOT / "tests" / "fixtures" / "history"
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


@pytest.fixture
def store(tmp_path):
    with HistoryStore(tmp_path / "history.sqlite3") as s:
        yield s


def test_registry():
    assert importers.kinds() == ["csv", "git_activity", "ics", "libvirt_events", "proxmox_tasks", "wtmp"]
    assert importers.target("ics") == "calendar" and importers.target("wtmp") == "sessions"
    with pytest.raises(InvalidInput, match="Unknown history import kind"):
        importers.get("syslog")


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


def test_wtmp_rejects_non_wtmp_input():
    with pytest.raises(InvalidInput, match="not a multiple"):
        importers.get("wtmp")(b"hello world")


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


def test_csv_sample(store):
    rows, report = importers.get("csv")(str(FIXTURES / "sessions.csv"), desktop_map={"desk-bob": "vdi-bob"})
    assert (report.read, report.parsed) == (11, 7)
    assert report.rejected == {"bad_time": 2, "end_before_start": 1, "missing_user": 1}
    assert {e["line"] for e in report.examples} == {8, 9, 11, 12}
    naive = [r for r in rows if r["line"] == 6][0]  # naive times at the row's own offset (-300)
    assert naive["start"] == datetime.datetime(2026, 11, 17, 14, 1, tzinfo=UTC) and naive["desktop"] == "vdi-bob"
    assert [r for r in rows if r["user"] == "carol"][0]["end"] is None
    merged = report.merge(store.add_sessions(rows, "csv"))
    assert merged.added == 6 and merged.rejected["overlap"] == 1 and merged.rejected_total == 5


def test_csv_missing_columns():
    with pytest.raises(InvalidInput, match="missing: end"):
        importers.get("csv")("user,start\nalice,2026-11-16T08:00:00Z\n")


def test_libvirt_events_real_sample(store):
    rows, report = importers.get("libvirt_events")(str(FIXTURES / "virsh_events.log"), domain_prefix="sdhist-")
    assert [(r["user"], r["end_reason"]) for r in rows] == [
        ("alice", "disconnect"), ("bob", "disconnect"), ("alice", "disconnect"), ("alice", "domain_stopped")]
    assert rows[0]["start"] == datetime.datetime(2026, 11, 22, 0, 2, 46, 106000, tzinfo=UTC)
    assert rows[0]["end"] == datetime.datetime(2026, 11, 22, 0, 2, 49, 182000, tzinfo=UTC)
    assert rows[0]["desktop"] == "sdhist-alice"
    assert report.skipped == {"lifecycle": 4, "other_event": 2}
    assert store.add_sessions(rows, "libvirt_events").added == 4
    # Without the right prefix or map, nothing is attributed to anybody.
    rows, report = importers.get("libvirt_events")(str(FIXTURES / "virsh_events.log"))
    assert rows == [] and report.skipped["unmapped_domain"] == 11  # every graphics line
    rows, _ = importers.get("libvirt_events")(str(FIXTURES / "virsh_events.log"), user_map={"sdhist-bob": "robert"})
    assert [r["user"] for r in rows] == ["robert"]


def test_libvirt_events_edge_cases():
    text = "\n".join([
        "event 'graphics' for domain 'desk-x': connect local[IPv4 127.0.0.1 5900] remote[IPv4 10.0.0.1 1] none",
        "2026-11-21 10:00:00.000+0000: event 'graphics' for domain 'desk-x': connect local[IPv4 127.0.0.1 5900] "
        "remote[IPv4 10.0.0.1 1] none",
        "2026-11-21 10:00:01.000+0000: event 'graphics' for domain 'desk-x': disconnect local[IPv4 127.0.0.1 5900] "
        "remote[IPv4 10.0.0.1 1] none",
        "events received: 3",
    ])
    rows, report = importers.get("libvirt_events")(text)
    assert rows == [] and report.skipped == {"never_initialized": 1, "not_an_event": 1}
    assert report.rejected == {"no_timestamp": 1}


def test_proxmox_tasks_sample(store):
    rows, report = importers.get("proxmox_tasks")(str(FIXTURES / "pve_tasks.json"),
                                                  desktop_map={101: "desk-alice"}, user_map={"bob@pve": "robert"})
    assert [(r["user"], r["desktop"]) for r in rows] == [("alice", "desk-alice"), ("robert", "102"),
                                                         ("alice", "desk-alice")]
    assert rows[0]["start"] == datetime.datetime.fromtimestamp(1763287488, UTC)
    assert rows[2]["end"] is None  # still running: open
    assert report.skipped == {"not_a_console_task": 1, "task_failed": 1}
    assert report.rejected == {"bad_time": 1} and report.examples[0]["line"] == 6
    assert store.add_sessions(rows, "proxmox_tasks").added == 3
    with pytest.raises(InvalidInput, match="not valid JSON"):
        importers.get("proxmox_tasks")("{not json")


def test_ics_requires_consent_before_reading(tmp_path):
    missing = tmp_path / "never-created.ics"
    with pytest.raises(ConsentRequired):
        importers.get("ics")(str(missing), user="alice", consented_users=["bob"])


def test_ics_sample(store):
    rows, report = importers.get("ics")(str(FIXTURES / "alice_calendar.ics"), user="alice",
                                        consented_users=["alice"])
    assert [(r["start"].isoformat(), r["end"].isoformat(), r["busy"]) for r in rows] == [
        ("2026-11-16T08:30:00+00:00", "2026-11-16T09:00:00+00:00", True),
        ("2026-11-17T13:00:00+00:00", "2026-11-17T14:30:00+00:00", True),   # Europe/Berlin, CET
        ("2026-11-18T12:00:00+00:00", "2026-11-18T14:00:00+00:00", False),  # TRANSP:TRANSPARENT, DURATION
        ("2026-11-20T00:00:00+00:00", "2026-11-21T00:00:00+00:00", True),   # all-day
        ("2026-11-19T10:00:00+00:00", "2026-11-19T11:00:00+00:00", True),   # first instance of a weekly RRULE
    ]
    assert all(set(r) == {"start", "end", "busy", "line"} for r in rows)  # no titles leave the parser
    assert report.skipped == {"recurrence_not_expanded": 1, "cancelled": 1}
    assert report.rejected == {"end_before_start": 1}
    assert any("recurr" in w for w in report.warnings)
    store.set_consent("alice", True)
    assert store.add_calendar_events("alice", rows).added == 5
    with pytest.raises(InvalidInput, match="Not a valid iCalendar"):
        importers.get("ics")("BEGIN:VCALENDAR\nthis is broken", user="alice", consented_users=["alice"])
