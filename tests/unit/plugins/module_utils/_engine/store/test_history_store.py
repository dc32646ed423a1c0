"""HistoryStore on both databases (SQLite files and a real PostgreSQL server, see conftest.py): migrations,
idempotent imports, bad rows, rollback, locks, events, consent, check mode."""

import datetime
import sqlite3

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import store as store_mod
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import (
    ConsentRequired,
    HistoryStore,
    StoreUnavailable,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.migrations import MIGRATIONS, render
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.tests.postgres_server import TEST_PASSWORD as PASSWORD

UTC = datetime.timezone.utc


def t(hour, minute=0, day=16):
    return datetime.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def row(user, start, end, desktop="desk", line=None, tz=None):
    return {"user": user, "desktop": desktop, "start": start, "end": end, "tz_offset_min": tz, "line": line}


@pytest.fixture
def store(db):
    with HistoryStore(db.location()) as s:
        yield s


def _versions(db, location):
    raw = db.raw(location)
    try:
        return [r[0] for r in raw.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]
    finally:
        raw.close()


def test_fresh_store_is_migrated_once(db):
    location = db.location()
    with HistoryStore(location) as s:
        assert s.schema_version() == store_mod.SCHEMA_VERSION
        assert s.dialect == db.dialect
    assert _versions(db, location) == [m[0] for m in MIGRATIONS]
    with HistoryStore(location) as s:  # reopening migrates nothing twice
        assert s.schema_version() == store_mod.SCHEMA_VERSION
    assert _versions(db, location) == [m[0] for m in MIGRATIONS]


def test_sqlite_store_uses_wal(tmp_path):
    path = tmp_path / "d" / "history.sqlite3"
    HistoryStore(path).close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def _make_version_1(db, location):
    if db.dialect == "sqlite":
        import os
        os.makedirs(os.path.dirname(location), exist_ok=True)
    raw = db.raw(location)
    raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for sql in MIGRATIONS[0][1]:
        raw.execute(render(sql, db.dialect))
    raw.execute("INSERT INTO schema_version (version) VALUES (1)")
    raw.execute('INSERT INTO utilisation (desktop, "user", sampled_at, cpu_percent, memory_mib) '
                "VALUES ('desk-a', 'alice', '2026-11-20T09:00:00.000000Z', 50.0, 2048)")  # v1's own time format
    raw.close()


def test_a_version_1_store_is_migrated_forward_keeping_its_samples(db):
    location = db.location()
    _make_version_1(db, location)
    with HistoryStore(location) as s:
        assert s.schema_version() == store_mod.SCHEMA_VERSION >= 2
        (got,) = s.utilisation(user="alice")
        assert got["cpu_percent"] == 50.0 and got["vcpus"] is None
        s.add_utilisation([{"desktop": "desk-a", "user": "alice", "sampled_at": "2026-11-20T10:00:00Z",
                            "cpu_percent": 25.0, "memory_mib": 1024, "vcpus": 4, "disk_read_bytes": 2 ** 40}])
        assert [r["vcpus"] for r in s.utilisation(user="alice")] == [None, 4.0]
        assert s.utilisation(user="alice")[1]["disk_read_bytes"] == 2 ** 40  # byte counters are 64-bit


def test_read_only_open_creates_and_migrates_nothing(db, tmp_path):
    if db.dialect == "sqlite":
        absent = tmp_path / "nowhere" / "history.sqlite3"
        with HistoryStore(absent, read_only=True) as s:
            assert s.sessions() == [] and s.schema_version() == store_mod.SCHEMA_VERSION
        assert not absent.parent.exists()
    location = db.location()
    _make_version_1(db, location)
    with HistoryStore(location, read_only=True) as s:
        assert s.schema_version() == store_mod.SCHEMA_VERSION  # migrated for reading ...
        assert [r["vcpus"] for r in s.utilisation(user="alice")] == [None]
        report = s.add_sessions([row("alice", t(8), t(9))], "csv", dry_run=True)
        assert report.added == 1
        with pytest.raises(InvalidInput, match="read-only"):
            s.add_sessions([row("alice", t(8), t(9))], "csv")
    assert _versions(db, location) == [1]  # ... but never for real
    with HistoryStore(location) as s:
        assert s.sessions() == []


def test_newer_schema_is_refused(db):
    location = db.location()
    HistoryStore(location).close()
    raw = db.raw(location)
    raw.execute("INSERT INTO schema_version VALUES (999)")
    raw.close()
    with pytest.raises(StoreUnavailable, match="newer"):
        HistoryStore(location)
    with pytest.raises(StoreUnavailable, match="newer"):
        HistoryStore(location, read_only=True)


def test_corrupt_or_unwritable_store_is_unavailable(tmp_path):
    bad = tmp_path / "history.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable):
        HistoryStore(bad)
    assert bad.read_bytes() == b"this is not a database" * 100  # nothing overwritten
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailable):
        HistoryStore(blocker / "sub" / "history.sqlite3")


def test_refused_login_and_a_down_server_are_clear_errors_without_the_password(pg_server):
    url = pg_server.create_database("sd_login", "shadowdesk", PASSWORD)
    wrong = pg_server.url("sd_login", "shadowdesk", "not-the-password")
    with pytest.raises(StoreUnavailable, match="password authentication failed") as refused:
        HistoryStore(wrong)
    assert "not-the-password" not in str(refused.value) and "not-the-password" not in str(refused.value.details)
    # The password may come separately (an AWX credential injects it into the environment).
    with HistoryStore(pg_server.url("sd_login", "shadowdesk"), password=PASSWORD) as s:
        assert s.schema_version() == store_mod.SCHEMA_VERSION
    gone = url.replace(pg_server.socket_dir, pg_server.socket_dir + "-gone")
    with pytest.raises(StoreUnavailable, match="Cannot open the history store postgresql://shadowdesk@/") as down:
        HistoryStore(gone, timeout=1)
    assert PASSWORD not in str(down.value)


def test_add_sessions_is_idempotent(store):
    rows = [row("alice", t(8), t(12)), row("alice", t(13), t(17)), row("bob", t(9), None)]
    first = store.add_sessions(rows, "csv")
    assert (first.added, first.duplicates, first.rejected) == (3, 0, {})
    again = store.add_sessions(rows, "csv")
    assert (again.added, again.duplicates) == (0, 3)
    assert store.users() == ["alice", "bob"]
    got = store.sessions(user="alice")
    assert [(s["start"], s["end"]) for s in got] == [(t(8), t(12)), (t(13), t(17))]
    assert got[0]["start"].tzinfo is not None and got[0]["source"] == "csv"
    # The same session from another source is a different record.
    assert store.add_sessions(rows[:1], "wtmp").added == 1


def test_bad_rows_are_counted_not_stored(store):
    rows = [
        row("alice", t(8), t(12), line=2),
        row("alice", "not a time", t(12), line=3),
        row("alice", t(15), t(14), line=4),                   # end before start
        row("alice", t(9), t(10), line=5),                    # overlaps line 2 on the same desktop
        row("alice", t(8), t(11), line=6),                    # same key, different end
        row("", t(8), t(9), line=7),
        row("alice", "2026-11-16T20:00:00", None, line=8),    # naive: ambiguous
        row("alice", t(18), t(19), tz=5000, line=9),
        row("alice", t(9), t(10), desktop="other", line=10),  # another desktop: fine
    ]
    report = store.add_sessions(rows, "csv")
    assert report.added == 2
    assert report.rejected == {"bad_time": 2, "end_before_start": 1, "overlap": 1, "conflicting_duplicate": 1,
                               "missing_user": 1, "bad_tz_offset": 1}
    assert report.examples[0] == {"line": 3, "reason": "bad_time", "detail": report.examples[0]["detail"]}
    assert len(report.examples) == report.MAX_EXAMPLES
    assert len(store.sessions()) == 2


def test_open_session_closed_by_reimport(store):
    store.add_sessions([row("alice", t(8), None)], "wtmp")
    report = store.add_sessions([row("alice", t(8), t(12)), row("alice", t(13), None)], "wtmp")
    assert (report.updated, report.added) == (1, 1)
    assert [s["end"] for s in store.sessions("alice")] == [t(12), None]


def test_failed_import_rolls_back(store, monkeypatch):
    store.add_sessions([row("alice", t(8), t(9))], "csv")
    before = store.sessions("alice")
    real = HistoryStore._add_session
    calls = []

    def boom(self, tx, r, source, report):
        calls.append(r)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return real(self, tx, r, source, report)

    monkeypatch.setattr(HistoryStore, "_add_session", boom)
    with pytest.raises(RuntimeError):
        store.add_sessions([row("alice", t(10), t(11)), row("alice", t(12), t(13)), row("alice", t(14), t(15))],
                           "csv")
    monkeypatch.setattr(HistoryStore, "_add_session", real)
    assert len(store.sessions("alice")) == 1
    assert store.sessions("alice") == before


def test_locked_store_fails_cleanly_and_keeps_data(db):
    location = db.location()
    with HistoryStore(location) as s:
        s.add_sessions([row("alice", t(8), t(9))], "csv")
    locker = db.raw(location)
    if db.dialect == "sqlite":
        locker.execute("BEGIN EXCLUSIVE")
    else:  # another writer holding the store's write lock
        from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store._postgres import WRITE_LOCK_ID
        locker.execute("BEGIN")
        locker.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_ID,))
    try:
        with HistoryStore(location, timeout=0.05) as s:
            with pytest.raises(StoreUnavailable):
                s.add_sessions([row("alice", t(10), t(11))], "csv")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    with HistoryStore(location) as s:
        assert len(s.sessions("alice")) == 1


def test_dry_run_reports_without_writing(store):
    report = store.add_sessions([row("alice", t(8), t(9)), row("alice", t(8, 30), t(10))], "csv", dry_run=True)
    assert (report.added, report.rejected) == (1, {"overlap": 1})
    assert store.sessions() == []


def test_sessions_window(store):
    store.add_sessions([row("alice", t(8, day=16), t(9, day=16)), row("alice", t(8, day=17), t(9, day=17)),
                        row("alice", t(8, day=18), None)], "csv")
    got = store.sessions("alice", since=t(0, day=17), until=t(0, day=18))
    assert [s["start"] for s in got] == [t(8, day=17)]
    assert len(store.sessions("alice", since="2026-11-20T00:00:00Z")) == 1  # the open one


def test_record_event_opens_and_closes(store):
    assert store.record_event("alice", "desk-alice", "connect", at=t(8), resources={"vcpus": 2})["session"] == "opened"
    assert store.sessions("alice")[0]["end"] is None
    assert store.record_event("alice", "desk-alice", "disconnect", at="2026-11-16T12:00:00Z")["session"] == "closed"
    assert store.sessions("alice")[0]["end"] == t(12)
    assert store.record_event("alice", "desk-alice", "disconnect", at=t(12))["event"] == "duplicate"
    assert store.record_event("alice", "desk-alice", "disconnect", at=t(13))["session"] == "no_open_session"
    store.record_event("alice", "desk-alice", "connect", at=t(14))
    assert store.record_event("alice", "desk-alice", "connect", at=t(15))["session"] == "superseded_and_opened"
    assert [(s["start"], s["end"]) for s in store.sessions("alice")] == [(t(8), t(12)), (t(14), t(15)), (t(15), None)]
    assert store.record_event("alice", "desk-alice", "connect", at=t(15))["event"] == "duplicate"
    with pytest.raises(InvalidInput):
        store.record_event("alice", "desk-alice", "reboot", at=t(16))
    with pytest.raises(InvalidInput):
        store.record_event("alice", "desk-alice", "connect", at="2026-11-16 16:00")  # naive
    now = store.record_event("bob", "desk-bob", "connect")["at"]
    assert now.tzinfo is not None


def test_utilisation(store):
    samples = [{"desktop": "desk-alice", "user": "alice", "sampled_at": t(8, m), "cpu_percent": 12.5,
                "memory_mib": 1800, "net_rx_bytes": 1000} for m in (0, 5, 10)]
    assert store.add_utilisation(samples).added == 3
    report = store.add_utilisation(samples + [{"desktop": "desk-alice", "sampled_at": "bad"}])
    assert (report.added, report.duplicates, report.rejected) == (0, 3, {"bad_sample": 1})
    got = store.utilisation(user="alice", since=t(8, 5))
    assert [g["sampled_at"] for g in got] == [t(8, 5), t(8, 10)]
    assert got[0]["cpu_percent"] == 12.5 and got[0]["disk_read_bytes"] is None


def test_calendar_needs_consent_and_keeps_no_titles(store):
    events = [{"start": t(9), "end": t(10), "busy": True}, {"start": t(12), "end": t(13), "busy": False}]
    with pytest.raises(ConsentRequired):
        store.add_calendar_events("alice", events)
    store.set_consent("alice", True)
    assert store.consented_users() == ["alice"]
    assert store.add_calendar_events("alice", events).added == 2
    assert store.add_calendar_events("alice", events).duplicates == 2
    assert store.calendar_events("alice", since=t(11)) == [{"start": t(12), "end": t(13), "busy": False}]
    columns = store.columns("calendar_events")
    assert not {"title", "summary", "description", "location"} & set(columns)
    store.set_consent("alice", False)  # withdrawal erases
    assert store.consented_users() == [] and store.calendar_events("alice") == []
