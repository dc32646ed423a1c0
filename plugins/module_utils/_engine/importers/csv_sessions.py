# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: generic CSV sessions ``user,start,end`` (+ optional ``desktop``, ``tz_offset_min``).

The lowest common denominator every broker / VDI gateway can export. Times are ISO-8601; a time without an offset
is read as local time at the row's ``tz_offset_min`` (and refused when that is absent, since guessing shifts
every forecast by hours). An empty ``end`` is an open session.
"""

from __future__ import annotations

import csv
import io

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import ImportReport, parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.importers._common import map_name, read_text

REQUIRED = ("user", "start", "end")


def parse(path_or_text, user_map=None, desktop_map=None, **_ignored):
    text = read_text(path_or_text)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InvalidInput("CSV sessions file needs the columns user,start,end; missing: %s (header: %s)"
                           % (",".join(missing), ",".join(header) or "none"))
    reader.fieldnames = header
    rows, report = [], ImportReport()
    try:
        for record in reader:
            report.read += 1
            row = _row(record, reader.line_num, report, user_map, desktop_map)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise InvalidInput("Malformed CSV at line %d: %s" % (reader.line_num, exc)) from None
    report.parsed = len(rows)
    return rows, report


def _row(record, line, report, user_map, desktop_map):
    user = (record.get("user") or "").strip()
    if not user:
        report.reject("missing_user", line)
        return None
    tz = (record.get("tz_offset_min") or "").strip()
    try:
        tz = int(tz) if tz else None
    except ValueError:
        report.reject("bad_tz_offset", line, tz)
        return None
    try:
        start = parse_time(record.get("start") or "", tz)
        end_text = (record.get("end") or "").strip()
        end = parse_time(end_text, tz) if end_text else None
    except ValueError as exc:
        report.reject("bad_time", line, exc)
        return None
    if end is not None and end < start:
        report.reject("end_before_start", line, "%s < %s" % (end.isoformat(), start.isoformat()))
        return None
    desktop = (record.get("desktop") or "").strip() or None
    return {"user": map_name(user_map, user, user), "desktop": map_name(desktop_map, desktop, desktop),
            "start": start, "end": end, "tz_offset_min": tz, "line": line}
