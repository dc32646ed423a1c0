# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: sessions from the Proxmox VE task list (``GET /nodes/{node}/tasks``, JSON).

Every console connection through the PVE web UI or API runs as a task (``vncproxy`` / ``spiceproxy``) that lasts
as long as the viewer is attached, so the task list is a ready-made connect/disconnect log: ``starttime`` and
``endtime`` (epoch seconds) bound the session, ``id`` is the vmid, ``user`` the PVE login (``alice@pve``,
``alice@pve!token``). Input is the API body (``{"data": [...]}``) or the bare list; tasks of other types and
failed tasks (status other than ``OK``: the viewer never attached) are skipped and counted. A task without
``endtime`` is still running: an open session.
"""

from __future__ import annotations

import datetime
import json

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import ImportReport
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.importers._common import map_name, read_text

CONSOLE_TYPES = ("vncproxy", "spiceproxy")
UTC = datetime.timezone.utc


def _epoch(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        value = int(str(value))
    return datetime.datetime.fromtimestamp(value, UTC)


def parse(path_or_text, user_map=None, desktop_map=None, task_types=CONSOLE_TYPES, **_ignored):
    try:
        body = json.loads(read_text(path_or_text))
    except ValueError as exc:
        raise InvalidInput("Proxmox task list is not valid JSON: %s" % exc) from None
    tasks = body.get("data") if isinstance(body, dict) else body
    if not isinstance(tasks, list):
        raise InvalidInput("Proxmox task list must be a JSON list or {\"data\": [...]} as returned by "
                           "GET /nodes/{node}/tasks")
    report, rows = ImportReport(), []
    for index, task in enumerate(tasks, start=1):
        report.read += 1
        if not isinstance(task, dict):
            report.reject("not_an_object", index)
            continue
        if task.get("type") not in task_types:
            report.skip("not_a_console_task")
            continue
        if task.get("endtime") is not None and task.get("status", "OK") != "OK":
            report.skip("task_failed")
            continue
        login = str(task.get("user") or "")
        user = map_name(user_map, login) or login.split("!", 1)[0].split("@", 1)[0]
        vmid = task.get("id")
        if not user or vmid in (None, ""):
            report.reject("missing_user_or_vmid", index, task.get("upid"))
            continue
        try:
            start = _epoch(task["starttime"])
            end = _epoch(task["endtime"]) if task.get("endtime") is not None else None
        except (KeyError, ValueError, OverflowError, OSError) as exc:
            report.reject("bad_time", index, "%s: %s" % (task.get("upid"), exc))
            continue
        rows.append({"user": user, "desktop": map_name(desktop_map, vmid, str(vmid)), "start": start, "end": end,
                     "tz_offset_min": None, "line": index, "upid": task.get("upid")})
    report.parsed = len(rows)
    return rows, report
