# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: calendar consent and busy times (tables ``consents``, ``calendar_events``).

Calendar data is kept minimal (start, end, busy; never titles) and only for users who consented; withdrawing
consent erases what was stored.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.errors import ConsentRequired
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.import_report import ImportReport
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.times import (
    format_time, load_time, now_text, parse_time,
)


class CalendarTables:
    """Mixin of HistoryStore: reads and writes of ``consents`` and ``calendar_events``."""

    def set_consent(self, user, calendar):
        """Record a user's calendar opt-in. Withdrawing consent also erases that user's stored calendar data."""
        if not user:
            raise InvalidInput("set_consent needs a user")
        with self._write() as tx:
            tx.execute('INSERT INTO consents ("user", calendar, updated_at) VALUES (?, ?, ?) '
                       'ON CONFLICT ("user") DO UPDATE SET calendar = excluded.calendar, '
                       "updated_at = excluded.updated_at", (user, 1 if calendar else 0, now_text()))
            if not calendar:
                tx.execute('DELETE FROM calendar_events WHERE "user" = ?', (user,))

    def has_consent(self, user):
        return bool(self._query('SELECT 1 FROM consents WHERE "user" = ? AND calendar = 1', (user,)))

    def consented_users(self):
        return sorted(r[0] for r in self._query('SELECT "user" FROM consents WHERE calendar = 1'))

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
                cur = tx.execute('INSERT INTO calendar_events ("user", start_utc, end_utc, busy, source) '
                                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                 (user, start, end, 1 if ev.get("busy", True) else 0, source))
                if cur.rowcount:
                    report.added += 1
                else:
                    report.duplicates += 1
        return report

    def calendar_events(self, user, since=None, until=None):
        sql = 'SELECT start_utc, end_utc, busy FROM calendar_events WHERE "user" = ?'
        params = [user]
        if since is not None:
            sql += " AND end_utc > ?"
            params.append(format_time(parse_time(since)))
        if until is not None:
            sql += " AND start_utc < ?"
            params.append(format_time(parse_time(until)))
        return [{"start": load_time(r[0]), "end": load_time(r[1]), "busy": bool(r[2])}
                for r in sorted(self._query(sql, params))]
