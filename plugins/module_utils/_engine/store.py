# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the behaviour-history store, one SQLite file per data directory.

Forecasts are only as good as the connect/disconnect history behind them, and that history arrives from many
places (importers, the ``session_recorder`` callback, several controllers at once). So the store:

- uses stdlib ``sqlite3`` in WAL mode (readers never block the callback's writes) with a ``schema_version`` table
  and forward-only migrations, so an old data directory opens with a newer collection;
- makes imports idempotent: a session is identified by ``(user, start_utc, source)``; re-importing the same file
  adds nothing, and a row that closes a session stored as open updates it;
- never lets a bad row corrupt good data: every import is one transaction, bad rows are counted per reason in an
  :class:`ImportReport` (with a few examples and their line numbers) and everything else commits; any SQLite
  failure rolls the whole import back and surfaces as :class:`StoreUnavailable`;
- keeps calendar data minimal (start, end, busy; never titles) and only for users who consented.

Times are timezone-aware UTC ``datetime`` objects in Python and fixed-width ISO-8601 ``...Z`` strings on disk, so
string comparison in SQL is time comparison. Stdlib only (rule 2 and 6 of docs/architecture.md): the callback
plugin imports this file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Dict, List

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput, ShadowDeskError
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir

UTC = datetime.timezone.utc
DB_NAME = "history.sqlite3"
EVENTS = ("connect", "disconnect")
_DB_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class StoreUnavailable(ShadowDeskError):
    """The history database cannot be opened or written (unwritable directory, locked, corrupt, newer schema)."""


class ConsentRequired(InvalidInput):
    """Calendar data was offered for a user who has not opted in."""


def db_path(data_dir=None):
    return os.path.join(os.path.expanduser(data_dir or default_data_dir()), DB_NAME)


def parse_time(value, default_offset_min=None):
    """A tz-aware UTC datetime from a datetime or an ISO-8601 string.

    Naive values are ambiguous (whose local time?), so they are refused unless the caller knows the offset.
    Raises ValueError with a short reason.
    """
    if isinstance(value, datetime.datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("empty time")
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("not an ISO-8601 time: %r" % value[:40]) from None
    else:
        raise ValueError("not a time: %r" % (value,))
    if dt.tzinfo is None or dt.utcoffset() is None:
        if default_offset_min is None:
            raise ValueError("time without a UTC offset: %r" % (str(value)[:40],))
        dt = dt.replace(tzinfo=datetime.timezone(datetime.timedelta(minutes=int(default_offset_min))))
    return dt.astimezone(UTC)


def format_time(dt):
    """The on-disk form: fixed width, so SQL string order is time order."""
    return dt.astimezone(UTC).strftime(_DB_FORMAT)


def _load_time(text):
    return None if text is None else datetime.datetime.strptime(text, _DB_FORMAT).replace(tzinfo=UTC)


def _opt_time(value):
    return None if value is None else format_time(parse_time(value))


@dataclass
class ImportReport:
    """What an import did, for humans and for ``history_import``'s return value.

    A parser fills ``read`` (records seen), ``parsed`` (rows produced), ``skipped`` (records that are not sessions,
    by reason: not errors) and parse-level ``rejected``; the store fills ``added`` / ``duplicates`` / ``updated``
    and store-level ``rejected``. :meth:`merge` combines the two.
    """

    read: int = 0
    parsed: int = 0
    added: int = 0
    duplicates: int = 0
    updated: int = 0
    rejected: Dict[str, int] = field(default_factory=dict)
    skipped: Dict[str, int] = field(default_factory=dict)
    examples: List[Dict[str, Any]] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    MAX_EXAMPLES = 5

    def reject(self, reason, line=None, detail=""):
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if len(self.examples) < self.MAX_EXAMPLES:
            self.examples.append({"line": line, "reason": reason, "detail": str(detail)[:200]})

    def skip(self, reason, n=1):
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def warn(self, msg):
        if msg not in self.warnings:
            self.warnings.append(msg)

    @property
    def rejected_total(self):
        return sum(self.rejected.values())

    def merge(self, store_report):
        """Add the store's outcome to this parse report (in place) and return self."""
        self.added += store_report.added
        self.duplicates += store_report.duplicates
        self.updated += store_report.updated
        for reason, n in store_report.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        room = self.MAX_EXAMPLES - len(self.examples)
        self.examples.extend(store_report.examples[:max(room, 0)])
        for w in store_report.warnings:
            self.warn(w)
        return self

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["rejected_total"] = self.rejected_total
        return data


# Forward-only migrations: (version, statements). Never edit a released entry; append a new one.
MIGRATIONS = (
    (1, (
        """CREATE TABLE sessions (
               id INTEGER PRIMARY KEY,
               user TEXT NOT NULL,
               desktop TEXT,
               start_utc TEXT NOT NULL,
               end_utc TEXT,
               source TEXT NOT NULL,
               tz_offset_min INTEGER,
               UNIQUE (user, start_utc, source))""",
        "CREATE INDEX sessions_user_desktop ON sessions (user, desktop, source, start_utc)",
        """CREATE TABLE events (
               id INTEGER PRIMARY KEY,
               user TEXT NOT NULL,
               desktop TEXT NOT NULL,
               event TEXT NOT NULL CHECK (event IN ('connect', 'disconnect')),
               at_utc TEXT NOT NULL,
               resources TEXT,
               source TEXT NOT NULL,
               UNIQUE (user, desktop, event, at_utc, source))""",
        """CREATE TABLE utilisation (
               id INTEGER PRIMARY KEY,
               desktop TEXT NOT NULL,
               user TEXT,
               sampled_at TEXT NOT NULL,
               cpu_percent REAL,
               memory_mib REAL,
               disk_read_bytes INTEGER,
               disk_write_bytes INTEGER,
               net_rx_bytes INTEGER,
               net_tx_bytes INTEGER,
               UNIQUE (desktop, sampled_at))""",
        "CREATE INDEX utilisation_user ON utilisation (user, sampled_at)",
        """CREATE TABLE calendar_events (
               id INTEGER PRIMARY KEY,
               user TEXT NOT NULL,
               start_utc TEXT NOT NULL,
               end_utc TEXT NOT NULL,
               busy INTEGER NOT NULL,
               source TEXT NOT NULL,
               UNIQUE (user, start_utc, end_utc, busy))""",
        """CREATE TABLE consents (
               user TEXT PRIMARY KEY,
               calendar INTEGER NOT NULL,
               updated_at TEXT NOT NULL)""",
    )),
    # 2: the online vCPUs of each sample, so cpu_percent (of the online vCPUs) converts to busy vCPUs for profiles
    (2, ("ALTER TABLE utilisation ADD COLUMN vcpus REAL",)),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

UTILISATION_FIELDS = ("cpu_percent", "memory_mib", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes",
                      "net_tx_bytes", "vcpus")


class HistoryStore:
    """Sessions, connect/disconnect events, utilisation samples, calendar busy times and consents of users.

    ``timeout`` is how long a write waits for another writer's lock; the callback uses a short one so a busy
    database never slows a play.
    """

    def __init__(self, path, timeout=5.0):
        self.path = os.fspath(path)
        self._db = None
        try:
            if self.path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL").fetchall()
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise StoreUnavailable("Cannot open the history store %s: %s" % (self.path, exc), path=self.path) from None

    # -- plumbing -------------------------------------------------------------------------------------------------
    @classmethod
    def for_data_dir(cls, data_dir=None, **kwargs):
        return cls(db_path(data_dir), **kwargs)

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def _write(self, dry_run=False):
        """One transaction; rolled back on any error (or when ``dry_run``); SQLite errors become StoreUnavailable."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreUnavailable("History store %s is not writable: %s" % (self.path, exc), path=self.path) from None
        try:
            yield db
            if dry_run:
                db.execute("ROLLBACK")
            else:
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(db)
            raise StoreUnavailable("History store %s write failed (rolled back): %s" % (self.path, exc),
                                   path=self.path) from None
        except BaseException:
            _rollback(db)
            raise

    def _query(self, sql, params=()):
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable("History store %s read failed: %s" % (self.path, exc), path=self.path) from None

    def _migrate(self):
        db = self._db
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = row[0] or 0
        if current > SCHEMA_VERSION:
            raise sqlite3.DatabaseError("schema version %d is newer than this collection knows (%d); upgrade "
                                        "shadowdesk.vdi" % (current, SCHEMA_VERSION))
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            with self._write() as tx:
                for sql in statements:
                    tx.execute(sql)
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def schema_version(self):
        return self._query("SELECT MAX(version) FROM schema_version")[0][0]

    # -- sessions -------------------------------------------------------------------------------------------------
    def add_sessions(self, rows, source, dry_run=False):
        """Store session rows (contract: user, desktop, start, end, tz_offset_min; optional ``line``).

        Returns an ImportReport. ``dry_run`` runs every check inside the transaction and rolls it back, so check
        mode reports exactly what a real run would do.
        """
        if not source:
            raise InvalidInput("add_sessions needs a source name")
        report = ImportReport(read=len(rows), parsed=len(rows))
        with self._write(dry_run) as tx:
            for row in rows:
                self._add_session(tx, row, source, report)
        return report

    def _add_session(self, tx, row, source, report):
        line = row.get("line")
        user = row.get("user")
        if not user or not isinstance(user, str):
            report.reject("missing_user", line, row.get("user"))
            return
        try:
            start = format_time(parse_time(row.get("start")))
            end = _opt_time(row.get("end"))
        except ValueError as exc:
            report.reject("bad_time", line, exc)
            return
        if end is not None and end < start:
            report.reject("end_before_start", line, "%s < %s" % (end, start))
            return
        tz = row.get("tz_offset_min")
        if tz is not None:
            try:
                tz = int(tz)
            except (TypeError, ValueError):
                tz = 99999
            if not -1440 < tz < 1440:
                report.reject("bad_tz_offset", line, row.get("tz_offset_min"))
                return
        desktop = row.get("desktop") or None
        found = tx.execute("SELECT id, end_utc FROM sessions WHERE user = ? AND start_utc = ? AND source = ?",
                           (user, start, source)).fetchone()
        if found is not None:
            if found[1] == end:
                report.duplicates += 1
            elif found[1] is None and not self._overlaps(tx, user, desktop, source, start, end, found[0]):
                tx.execute("UPDATE sessions SET end_utc = ? WHERE id = ?", (end, found[0]))
                report.updated += 1
            else:
                detail = "%s %s already stored with end %s" % (user, start, found[1])
                report.reject("conflicting_duplicate", line, detail)
            return
        if self._overlaps(tx, user, desktop, source, start, end):
            report.reject("overlap", line, "%s on %s %s..%s overlaps a stored session" % (user, desktop, start, end))
            return
        tx.execute("INSERT INTO sessions (user, desktop, start_utc, end_utc, source, tz_offset_min) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (user, desktop, start, end, source, tz))
        report.added += 1

    @staticmethod
    def _overlaps(tx, user, desktop, source, start, end, exclude_id=None):
        """A user cannot hold the same desktop twice at once (per source): such rows are overlapping duplicates."""
        row = tx.execute(
            "SELECT 1 FROM sessions WHERE user = ? AND desktop IS ? AND source = ? AND id IS NOT ? "
            "AND start_utc < ? AND (end_utc IS NULL OR end_utc > ?) LIMIT 1",
            (user, desktop, source, exclude_id, end if end is not None else "9999", start)).fetchone()
        return row is not None

    def sessions(self, user=None, since=None, until=None):
        """Sessions overlapping [since, until) (open sessions count as still running), ordered by user, start."""
        sql = "SELECT user, desktop, start_utc, end_utc, source, tz_offset_min FROM sessions WHERE 1 = 1"
        params = []
        if user is not None:
            sql += " AND user = ?"
            params.append(user)
        if since is not None:
            sql += " AND (end_utc IS NULL OR end_utc >= ?)"
            params.append(format_time(parse_time(since)))
        if until is not None:
            sql += " AND start_utc < ?"
            params.append(format_time(parse_time(until)))
        rows = self._query(sql + " ORDER BY user, start_utc, source", params)
        return [{"user": r[0], "desktop": r[1], "start": _load_time(r[2]), "end": _load_time(r[3]), "source": r[4],
                 "tz_offset_min": r[5]} for r in rows]

    def users(self):
        return [r[0] for r in self._query("SELECT DISTINCT user FROM sessions ORDER BY user")]

    # -- live events ----------------------------------------------------------------------------------------------
    def record_event(self, user, desktop, event, at=None, resources=None, source="callback", tz_offset_min=None):
        """Store one connect/disconnect and keep ``sessions`` in step with it.

        ``connect`` opens a session (closing a still-open one of the same user+desktop at this time: its
        disconnect was lost); ``disconnect`` closes the open one. Recording the same event twice is a no-op, so a
        retried flush cannot double count. Returns ``{"event": "recorded"|"duplicate", "session": outcome}``.
        """
        if event not in EVENTS:
            raise InvalidInput("event must be one of %s, got %r" % (", ".join(EVENTS), event))
        if not user or not desktop:
            raise InvalidInput("an event needs both user and desktop", user=user, desktop=desktop)
        try:
            at_s = format_time(parse_time(at) if at is not None else datetime.datetime.now(UTC))
        except ValueError as exc:
            raise InvalidInput("bad event time: %s" % exc) from None
        res = json.dumps(resources, sort_keys=True, default=str) if resources is not None else None
        with self._write() as tx:
            cur = tx.execute("INSERT OR IGNORE INTO events (user, desktop, event, at_utc, resources, source) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (user, desktop, event, at_s, res, source))
            if cur.rowcount == 0:
                return {"event": "duplicate", "session": "unchanged", "at": _load_time(at_s)}
            open_row = tx.execute(
                "SELECT id, start_utc FROM sessions WHERE user = ? AND desktop IS ? AND source = ? "
                "AND end_utc IS NULL ORDER BY start_utc DESC LIMIT 1", (user, desktop, source)).fetchone()
            outcome = self._apply_event(tx, event, open_row, (user, desktop, at_s, source, tz_offset_min))
        return {"event": "recorded", "session": outcome, "at": _load_time(at_s)}

    @staticmethod
    def _apply_event(tx, event, open_row, values):
        at_s = values[2]
        if event == "disconnect":
            if open_row is None or open_row[1] > at_s:
                return "no_open_session"
            tx.execute("UPDATE sessions SET end_utc = ? WHERE id = ?", (at_s, open_row[0]))
            return "closed"
        outcome = "opened"
        if open_row is not None:
            if open_row[1] >= at_s:
                return "already_open"
            tx.execute("UPDATE sessions SET end_utc = ? WHERE id = ?", (at_s, open_row[0]))
            outcome = "superseded_and_opened"
        tx.execute("INSERT OR IGNORE INTO sessions (user, desktop, start_utc, end_utc, source, tz_offset_min) "
                   "VALUES (?, ?, ?, NULL, ?, ?)", values)
        return outcome

    def events(self, user=None, since=None):
        sql = "SELECT user, desktop, event, at_utc, resources, source FROM events WHERE 1 = 1"
        params = []
        if user is not None:
            sql += " AND user = ?"
            params.append(user)
        if since is not None:
            sql += " AND at_utc >= ?"
            params.append(format_time(parse_time(since)))
        return [{"user": r[0], "desktop": r[1], "event": r[2], "at": _load_time(r[3]),
                 "resources": json.loads(r[4]) if r[4] else None, "source": r[5]}
                for r in self._query(sql + " ORDER BY at_utc, id", params)]

    # -- utilisation ----------------------------------------------------------------------------------------------
    def add_utilisation(self, samples):
        """Store samples ``{desktop, user, sampled_at, cpu_percent, memory_mib, disk_*_bytes, net_*_bytes, vcpus}``.

        A sample is identified by (desktop, sampled_at): re-sending one is counted as a duplicate.
        """
        report = ImportReport(read=len(samples), parsed=len(samples))
        with self._write() as tx:
            for i, s in enumerate(samples):
                try:
                    at = format_time(parse_time(s.get("sampled_at")))
                    values = [None if s.get(k) is None else float(s[k]) for k in UTILISATION_FIELDS]
                except (ValueError, TypeError) as exc:
                    report.reject("bad_sample", i, exc)
                    continue
                if not s.get("desktop"):
                    report.reject("missing_desktop", i)
                    continue
                cur = tx.execute(
                    "INSERT OR IGNORE INTO utilisation (desktop, user, sampled_at, %s) VALUES (?, ?, ?, %s)"
                    % (", ".join(UTILISATION_FIELDS), ", ".join("?" * len(UTILISATION_FIELDS))),
                    [s["desktop"], s.get("user"), at] + values)
                if cur.rowcount:
                    report.added += 1
                else:
                    report.duplicates += 1
        return report

    def utilisation(self, user=None, desktop=None, since=None):
        sql = "SELECT desktop, user, sampled_at, %s FROM utilisation WHERE 1 = 1" % ", ".join(UTILISATION_FIELDS)
        params = []
        for col, value in (("user", user), ("desktop", desktop)):
            if value is not None:
                sql += " AND %s = ?" % col
                params.append(value)
        if since is not None:
            sql += " AND sampled_at >= ?"
            params.append(format_time(parse_time(since)))
        out = []
        for r in self._query(sql + " ORDER BY desktop, sampled_at", params):
            item = {"desktop": r[0], "user": r[1], "sampled_at": _load_time(r[2])}
            item.update(zip(UTILISATION_FIELDS, r[3:]))
            out.append(item)
        return out

    # -- consent and calendars ------------------------------------------------------------------------------------
    def set_consent(self, user, calendar):
        """Record a user's calendar opt-in. Withdrawing consent also erases that user's stored calendar data."""
        if not user:
            raise InvalidInput("set_consent needs a user")
        now = format_time(datetime.datetime.now(UTC))
        with self._write() as tx:
            tx.execute("INSERT INTO consents (user, calendar, updated_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (user) DO UPDATE SET calendar = excluded.calendar, "
                       "updated_at = excluded.updated_at", (user, 1 if calendar else 0, now))
            if not calendar:
                tx.execute("DELETE FROM calendar_events WHERE user = ?", (user,))

    def has_consent(self, user):
        return bool(self._query("SELECT 1 FROM consents WHERE user = ? AND calendar = 1", (user,)))

    def consented_users(self):
        return [r[0] for r in self._query("SELECT user FROM consents WHERE calendar = 1 ORDER BY user")]

    def add_calendar_events(self, user, events, source="ics", dry_run=False):
        """Store busy/free intervals ``{start, end, busy}`` of a consenting user; refuses everyone else."""
        if not self.has_consent(user):
            raise ConsentRequired("User %r has not consented to calendar import; no calendar data is stored for "
                                  "them" % (user,), user=user)
        report = ImportReport(read=len(events), parsed=len(events))
        with self._write(dry_run) as tx:
            for ev in events:
                line = ev.get("line")
                try:
                    start = format_time(parse_time(ev.get("start")))
                    end = format_time(parse_time(ev.get("end")))
                except ValueError as exc:
                    report.reject("bad_time", line, exc)
                    continue
                if end < start:
                    report.reject("end_before_start", line, "%s < %s" % (end, start))
                    continue
                cur = tx.execute("INSERT OR IGNORE INTO calendar_events (user, start_utc, end_utc, busy, source) "
                                 "VALUES (?, ?, ?, ?, ?)", (user, start, end, 1 if ev.get("busy", True) else 0,
                                                            source))
                if cur.rowcount:
                    report.added += 1
                else:
                    report.duplicates += 1
        return report

    def calendar_events(self, user, since=None, until=None):
        sql = "SELECT start_utc, end_utc, busy FROM calendar_events WHERE user = ?"
        params = [user]
        if since is not None:
            sql += " AND end_utc > ?"
            params.append(format_time(parse_time(since)))
        if until is not None:
            sql += " AND start_utc < ?"
            params.append(format_time(parse_time(until)))
        return [{"start": _load_time(r[0]), "end": _load_time(r[1]), "busy": bool(r[2])}
                for r in self._query(sql + " ORDER BY start_utc", params)]

    # -- change detection -----------------------------------------------------------------------------------------
    def fingerprint(self, user):
        """A digest of everything a forecast of ``user`` is fitted on (sessions and calendar busy times).

        Equal digests mean nothing changed, so a refit can be skipped; any added, closed or removed row changes it.
        """
        digest = hashlib.sha256(b"shadowdesk-history-v1\0")
        for r in self._query("SELECT start_utc, end_utc, desktop, source, tz_offset_min FROM sessions "
                             "WHERE user = ? ORDER BY start_utc, source", (user,)):
            digest.update(("S|%s|%s|%s|%s|%s\n" % tuple(r)).encode("utf-8"))
        for r in self._query("SELECT start_utc, end_utc, busy FROM calendar_events WHERE user = ? "
                             "ORDER BY start_utc, end_utc, busy", (user,)):
            digest.update(("C|%s|%s|%s\n" % tuple(r)).encode("utf-8"))
        return digest.hexdigest()


def _rollback(db):
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:
        pass
