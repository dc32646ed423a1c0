"""Importers on small CSV / virsh-event / PVE-task / ICS samples in tests/fixtures/history (the virsh sample was
captured from a real libvirtd with a minimal VNC client, see the fixture's domains ``sdhist-*``). The real data sets
outside the repository (Aveiro wtmp, Datadog git activity) are read by tests/integration/test_importers_real_data.py."""

import datetime
import pathlib

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import importers
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import ConsentRequired, HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

ROOT = pathlib.Path(__file__).resolve().parents[5]
FIXTURES = ROOT / "tests" / "fixtures" / "history"
UTC = datetime.timezone.utc


@pytest.fixture
def store(tmp_path):
    with HistoryStore(tmp_path / "history.sqlite3") as s:
        yield s


def test_registry():
    assert importers.kinds() == ["csv", "git_activity", "ics", "libvirt_events", "proxmox_tasks", "wtmp"]
    assert importers.target("ics") == "calendar" and importers.target("wtmp") == "sessions"
    with pytest.raises(InvalidInput, match="Unknown history import kind"):
        importers.get("syslog")


def test_wtmp_rejects_non_wtmp_input():
    with pytest.raises(InvalidInput, match="not a multiple"):
        importers.get("wtmp")(b"hello world")


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
    rows, _report = importers.get("libvirt_events")(str(FIXTURES / "virsh_events.log"), user_map={"sdhist-bob": "robert"})
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
