#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation only: the work is done on the controller by plugins/action/history_import.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: history_import
short_description: Import users' connect/disconnect history into the ShadowDesk history store
version_added: 0.1.0
description:
  - Reads a history file on the controller and stores its sessions in C(<data_dir>/history.sqlite3), the store
    login forecasts are fitted on.
  - "Formats (O(kind)): V(csv) (C(user,start,end) with optional C(desktop), C(tz_offset_min)); V(wtmp) (Linux
    binary login log, x86_64); V(libvirt_events) (output of C(virsh event --all --loop --timestamp)); V(proxmox_tasks)
    (JSON of C(GET /nodes/{node}/tasks)); V(ics) (an iCalendar file of one consenting user: busy/free times only);
    V(git_activity) (per-day sessions C(user,day,first_ts_utc,last_ts_utc,n_commits,tz_offset_min), gzip allowed)."
  - Imports are idempotent; a session is identified by user, start and O(kind). Re-importing a file adds nothing
    and reports C(changed=false); a row that closes a session stored as still open updates it.
  - Bad rows (unparseable times, end before start, overlapping sessions of a user on one desktop) are counted per
    reason in RV(report) with examples and line numbers; they never fail the import or touch stored data. The whole
    import is one transaction.
  - Runs on the controller; nothing is sent to the managed host.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._data_dir
  - shadowdesk.vdi._history_store
options:
  kind:
    description: Format of O(src).
    type: str
    required: true
    choices: [csv, git_activity, ics, libvirt_events, proxmox_tasks, wtmp]
  src:
    description:
      - The file to import, on the controller (relative paths are searched like other C(files/) lookups). Gzip
        compressed files are read transparently.
    type: path
    required: true
  user_map:
    description:
      - Source user name to ShadowDesk user. For V(proxmox_tasks) keys are PVE logins (C(alice@pve)); unmapped
        logins lose their realm. For V(libvirt_events) keys are domain names.
    type: dict
  desktop_map:
    description:
      - Source desktop key to desktop name. Keys are the vmid for V(proxmox_tasks), the domain for
        V(libvirt_events), the terminal line (C(pts/0)) for V(wtmp), the C(desktop) column for V(csv) and the
        user for V(git_activity). Unmapped keys are kept as they are.
    type: dict
  domain_prefix:
    description:
      - For V(libvirt_events), a domain named C(<domain_prefix><user>) belongs to C(<user>) unless O(user_map)
        says otherwise. Events of other domains are skipped and counted.
    type: str
    default: desk-
  user:
    description: For V(ics), the user whose calendar O(src) is. Required for V(ics).
    type: str
  consent:
    description:
      - For V(ics), record the user's calendar opt-in (V(true)) or withdrawal (V(false)) before importing.
      - Calendar data is only read for users whose consent is stored; an V(ics) import for any other user fails
        without reading the file. Withdrawing consent also deletes the user's stored calendar data.
      - Omitted leaves the stored consent unchanged.
    type: bool
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
    details: Parses and runs the import in a transaction that is rolled back; the report is what a real run does.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - Only start, end and busy/free are kept from calendars; titles, attendees and locations are never stored.
  - Recurring calendar events are not expanded; their first instance is imported and the count is reported.
  - For V(wtmp), sessions are paired like C(last) does; a session still open at the end of the file stays open
    and is closed by a later import of a newer copy.
seealso:
  - module: shadowdesk.vdi.session_event
  - plugin: shadowdesk.vdi.session_recorder
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Import a broker's CSV export
  shadowdesk.vdi.history_import:
    kind: csv
    src: exports/sessions-2026-11.csv

- name: Import a copy of a desktop's wtmp, naming the terminal lines' desktop
  shadowdesk.vdi.history_import:
    kind: wtmp
    src: /var/tmp/desk-alice.wtmp
    desktop_map:
      tty1: desk-alice

- name: Import Proxmox console tasks (curl .../api2/json/nodes/pve1/tasks > tasks.json)
  shadowdesk.vdi.history_import:
    kind: proxmox_tasks
    src: tasks.json
    desktop_map:
      "101": desk-alice
    user_map:
      alice@pve: alice

- name: Import graphics events captured with virsh event --all --loop --timestamp
  shadowdesk.vdi.history_import:
    kind: libvirt_events
    src: virsh-events.log
    domain_prefix: desk-

- name: Alice opted in; import her calendar
  shadowdesk.vdi.history_import:
    kind: ics
    src: calendars/alice.ics
    user: alice
    consent: true

- name: Preview an import without writing
  shadowdesk.vdi.history_import:
    kind: git_activity
    src: sessions.csv.gz
  check_mode: true
  register: preview
"""

RETURN = r"""
report:
  description: What the import read, stored and refused.
  returned: success
  type: dict
  contains:
    read:
      description: Records read from O(src) (lines, wtmp records, tasks, calendar events).
      type: int
      sample: 2725
    parsed:
      description: Sessions (or calendar intervals) built from them.
      type: int
      sample: 1357
    added:
      description: Rows newly stored (would be stored, in check mode).
      type: int
      sample: 1357
    duplicates:
      description: Rows already stored identically.
      type: int
      sample: 0
    updated:
      description: Stored open sessions that this import closed.
      type: int
      sample: 0
    rejected:
      description: Refused rows per reason (C(bad_time), C(end_before_start), C(overlap), C(missing_user), ...).
      type: dict
      sample: {"bad_time": 2, "overlap": 1}
    rejected_total:
      description: Sum of RV(report.rejected).
      type: int
      sample: 3
    skipped:
      description: Records that are not sessions, per reason (not errors), e.g. C(not_a_console_task).
      type: dict
      sample: {"boot_or_shutdown": 12}
    examples:
      description: The first few refused rows with their line (or record) number, reason and detail.
      type: list
      elements: dict
      sample: [{"line": 8, "reason": "bad_time", "detail": "not an ISO-8601 time: 'yesterday'"}]
    warnings:
      description: Things the user should know (unexpanded recurrences, sessions left open).
      type: list
      elements: str
      sample: ["1 session(s) still open at the end of the file"]
added:
  description: Same as RV(report.added).
  returned: success
  type: int
  sample: 1357
db:
  description: Path of the history store (or its PostgreSQL URL, without the password).
  returned: success
  type: str
  sample: /home/ops/.local/share/shadowdesk/history.sqlite3
kind:
  description: The O(kind) imported.
  returned: success
  type: str
  sample: wtmp
msg:
  description: One-line summary.
  returned: always
  type: str
  sample: "wtmp: read 2725, added 1357, duplicates 0, updated 0, rejected 0"
"""
