# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: anonymous hourly traffic aggregates (table ``traffic_hourly``), the input of the traffic forecasts.

Rows come only from ``_decisions/flow_aggregate.py`` (already anonymised and k-suppressed): the table has no column for a
user, a desktop name or an address of a desktop, so none can be stored. A row is identified by (hour, usage class,
application class, destination, source), where ``source`` names the import (e.g. a digest of the flow file), so
importing the same file again adds nothing and two different files for the same hour add up.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.import_report import ImportReport
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.times import (
    format_time, load_time, parse_time,
)

TRAFFIC_KEYS = ("usage_class", "app_class", "destination")


class TrafficTables:
    """Mixin of HistoryStore: reads and writes of ``traffic_hourly``."""

    def add_traffic(self, rows, source, dry_run=False):
        """Store hourly aggregates ``{hour, usage_class, app_class, destination, bytes, packets, flows,
        connections}`` of one import ``source``; a row seen before from the same source is a duplicate.
        ``dry_run`` runs the same transaction and rolls it back (check mode), so its report is exact."""
        if not source:
            raise ValueError("an import source is required")
        report = ImportReport(read=len(rows), parsed=len(rows))
        with self._write(dry_run) as tx:
            for i, row in enumerate(rows):
                try:
                    hour = format_time(parse_time(row.get("hour")))
                    keys = [str(row[k]) for k in TRAFFIC_KEYS]
                    values = [int(row["bytes"]), int(row.get("packets") or 0), int(row.get("flows") or 0),
                              float(row.get("connections") or 0.0)]
                except (KeyError, ValueError, TypeError) as exc:
                    report.reject("bad_row", i, exc)
                    continue
                cur = tx.execute(
                    "INSERT INTO traffic_hourly (hour_utc, usage_class, app_class, destination, source, bytes, "
                    "packets, flows, connections) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [hour] + keys + [source] + values)
                if cur.rowcount:
                    report.added += 1
                else:
                    report.duplicates += 1
        return report

    def traffic(self, since=None):
        """Hourly totals per (app class, destination), summed over usage classes and imports, oldest first."""
        sql = ("SELECT hour_utc, app_class, destination, SUM(bytes), SUM(connections) FROM traffic_hourly "
               "WHERE 1 = 1")
        params = []
        if since is not None:
            sql += " AND hour_utc >= ?"
            params.append(format_time(parse_time(since)))
        sql += " GROUP BY hour_utc, app_class, destination"
        return [{"hour": load_time(r[0]), "app_class": r[1], "destination": r[2], "bytes": int(r[3]),
                 "connections": float(r[4])}
                for r in sorted(self._query(sql, params))]
