# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: per-day work sessions derived from git activity (``user,day,first_ts_utc,last_ts_utc,n_commits,
tz_offset_min``, optionally gzipped).

Used as a presence proxy where no logon log exists: the day's first commit stands for the login, the last for the
logout. The author's ``tz_offset_min`` is kept because the forecast works in the user's local time.
"""

from __future__ import annotations

import csv
import io

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import ImportReport, parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.importers._common import map_name, read_text

REQUIRED = ("user", "first_ts_utc", "last_ts_utc", "tz_offset_min")


def parse(path_or_text, user_map=None, desktop_map=None, **_ignored):
    reader = csv.DictReader(io.StringIO(read_text(path_or_text)))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InvalidInput("git-activity sessions file lacks the columns: %s (header: %s)"
                           % (",".join(missing), ",".join(header) or "none"))
    rows, report = [], ImportReport()
    try:
        for rec in reader:
            report.read += 1
            line = reader.line_num
            user = (rec.get("user") or "").strip()
            if not user:
                report.reject("missing_user", line)
                continue
            try:
                tz = int(rec["tz_offset_min"])
            except (TypeError, ValueError):
                report.reject("bad_tz_offset", line, rec.get("tz_offset_min"))
                continue
            try:
                start, end = parse_time(rec["first_ts_utc"]), parse_time(rec["last_ts_utc"])
            except ValueError as exc:
                report.reject("bad_time", line, exc)
                continue
            if end < start:
                report.reject("end_before_start", line)
                continue
            user = map_name(user_map, user, user)
            rows.append({"user": user, "desktop": map_name(desktop_map, user), "start": start, "end": end,
                         "tz_offset_min": tz, "line": line})
    except csv.Error as exc:
        raise InvalidInput("Malformed CSV at line %d: %s" % (reader.line_num, exc)) from None
    report.parsed = len(rows)
    return rows, report
