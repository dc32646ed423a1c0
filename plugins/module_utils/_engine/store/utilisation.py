# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: utilisation samples of desktops (table ``utilisation``), the input of the resource profiles.

The pattern for a table's mixin: methods on ``self``, writes inside ``with self._write() as tx``, reads through
``self._query``, SQL with ``?`` placeholders in the subset SQLite and PostgreSQL share.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.import_report import ImportReport
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.times import (
    format_time, load_time, parse_time,
)

UTILISATION_FIELDS = ("cpu_percent", "memory_mib", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes",
                      "net_tx_bytes", "vcpus")
_INTEGER_FIELDS = ("disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes")


class UtilisationTables:
    """Mixin of HistoryStore: reads and writes of ``utilisation``."""

    def add_utilisation(self, samples):
        """Store samples ``{desktop, user, sampled_at, cpu_percent, memory_mib, disk_*_bytes, net_*_bytes, vcpus}``.

        A sample is identified by (desktop, sampled_at): re-sending one is counted as a duplicate.
        """
        report = ImportReport(read=len(samples), parsed=len(samples))
        with self._write() as tx:
            for i, s in enumerate(samples):
                try:
                    at = format_time(parse_time(s.get("sampled_at")))
                    values = [None if s.get(k) is None else (int(float(s[k])) if k in _INTEGER_FIELDS else float(s[k]))
                              for k in UTILISATION_FIELDS]
                except (ValueError, TypeError) as exc:
                    report.reject("bad_sample", i, exc)
                    continue
                if not s.get("desktop"):
                    report.reject("missing_desktop", i)
                    continue
                cur = tx.execute(
                    'INSERT INTO utilisation (desktop, "user", sampled_at, %s) VALUES (?, ?, ?, %s) '
                    "ON CONFLICT DO NOTHING" % (", ".join(UTILISATION_FIELDS), ", ".join("?" * len(UTILISATION_FIELDS))),
                    [s["desktop"], s.get("user"), at] + values)
                if cur.rowcount:
                    report.added += 1
                else:
                    report.duplicates += 1
        return report

    def utilisation(self, user=None, desktop=None, since=None):
        sql = 'SELECT desktop, "user", sampled_at, %s FROM utilisation WHERE 1 = 1' % ", ".join(UTILISATION_FIELDS)
        params = []
        for col, value in (('"user"', user), ("desktop", desktop)):
            if value is not None:
                sql += " AND %s = ?" % col
                params.append(value)
        if since is not None:
            sql += " AND sampled_at >= ?"
            params.append(format_time(parse_time(since)))
        out = []
        for r in sorted(self._query(sql, params), key=lambda r: (r[0], r[2])):
            item = {"desktop": r[0], "user": r[1], "sampled_at": load_time(r[2])}
            item.update(zip(UTILISATION_FIELDS, r[3:]))
            out.append(item)
        return out
