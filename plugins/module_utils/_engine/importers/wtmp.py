# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: Linux ``wtmp`` (glibc ``struct utmp``, 384 bytes per record on x86_64) to sessions.

A desktop VM's own login log is the most direct presence signal. Pairing follows what ``last`` does:

- a USER_PROCESS (7) opens a session on its terminal line (``ut_line``);
- the next DEAD_PROCESS (8) on the same line closes it (``end_reason`` logout);
- a new USER_PROCESS on a line that is still open closes the old one at the new login (superseded: its logout
  record was lost);
- BOOT_TIME (2) or a ``shutdown`` RUN_LVL (1) record closes every open session at that time (system_reboot);
- whatever is open at the end of the file stays open (``end`` None, still_open_at_end).

Records are paired in file order, not time order: clocks jump at boot, so an end earlier than its start is clamped
to the start rather than dropped. The terminal line is the default desktop (``desktop_map`` renames lines), so a
user's concurrent terminals are separate, non-overlapping sessions.
"""

from __future__ import annotations

import datetime
import struct

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import ImportReport
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.importers._common import map_name, read_bytes

# type, pid, line, id, user, host, exit(term, exit), session, tv_sec, tv_usec, addr_v6, unused
RECORD = struct.Struct("<h2xi32s4s32s256shhiii16s20x")
RUN_LVL, BOOT_TIME, USER_PROCESS, DEAD_PROCESS = 1, 2, 7, 8
KNOWN_TYPES = range(0, 10)
UTC = datetime.timezone.utc


def _text(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def records(data):
    """Yield (index, type, line, user, host, time) for each full record; raise if the size is not a multiple."""
    if len(data) % RECORD.size:
        raise InvalidInput("Not a wtmp file: %d bytes is not a multiple of the %d-byte utmp record"
                           % (len(data), RECORD.size))
    for index, fields in enumerate(RECORD.iter_unpack(data)):
        ut_type, _pid, line, _id, user, host, _t, _e, _s, sec, usec, _addr, = fields
        at = datetime.datetime.fromtimestamp(sec, UTC) + datetime.timedelta(microseconds=usec) if 0 <= usec < 10 ** 6 \
            else None
        yield index, ut_type, _text(line), _text(user), _text(host), at


def parse(path_or_data, user_map=None, desktop_map=None, **_ignored):
    data = read_bytes(path_or_data)
    report = ImportReport()
    rows, open_by_line = [], {}

    def close(line, at, reason):
        row = open_by_line.pop(line)
        row["end"] = max(at, row["start"])
        row["end_reason"] = reason

    for index, ut_type, line, user, host, at in records(data):
        report.read += 1
        if ut_type not in KNOWN_TYPES:
            raise InvalidInput("Not a wtmp file: record %d has type %d" % (index, ut_type))
        if at is None:
            report.reject("bad_time", index)
            continue
        if ut_type == USER_PROCESS:
            if not user:
                report.reject("missing_user", index)
                continue
            if line in open_by_line:
                close(line, at, "superseded")
            row = {"user": map_name(user_map, user, user), "desktop": map_name(desktop_map, line, line),
                   "start": at, "end": None, "tz_offset_min": None, "line": index, "tty": line,
                   "remote_host": host, "end_reason": "still_open_at_end", "login_name": user}
            open_by_line[line] = row
            rows.append(row)
        elif ut_type == DEAD_PROCESS:
            if line in open_by_line:
                close(line, at, "logout")
            else:
                report.skip("logout_without_login")
        elif ut_type == BOOT_TIME or (ut_type == RUN_LVL and user == "shutdown"):
            for open_line in list(open_by_line):
                close(open_line, at, "system_reboot")
            report.skip("boot_or_shutdown")
        else:
            report.skip("other_record")
    if open_by_line:
        report.warn("%d session(s) still open at the end of the file" % len(open_by_line))
    report.parsed = len(rows)
    return rows, report
