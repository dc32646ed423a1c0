# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: sessions from libvirt graphics events as printed by ``virsh event --all --loop --timestamp``.

On a libvirt host the display server (VNC/SPICE inside QEMU) is where a user really connects, and libvirt reports
each client as ``connect`` (TCP accepted), ``initialize`` (handshake/auth done) and ``disconnect``, e.g.::

    2026-11-22 00:02:46.106+0000: event 'graphics' for domain 'desk-alice': connect local[IPv4 127.0.0.1 5900]
    remote[IPv4 127.0.0.1 52874] none

(one line). A session runs from ``connect`` to ``disconnect`` of the same remote endpoint, and counts only if it
reached ``initialize`` (a probe or failed login is not presence). A destroyed domain sends no disconnect, so its
``lifecycle ... Stopped`` event closes its open sessions. The user is ``user_map[domain]`` or the domain name
without ``domain_prefix`` (default ``desk-``); other domains are skipped and counted.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import ImportReport
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.importers._common import map_name, read_text

_LINE = re.compile(r"^(?:(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z)):\s+)?"
                   r"event '(?P<kind>[\w-]+)' for domain '?(?P<domain>[^':]+)'?: (?P<rest>.*)$")
_GRAPHICS = re.compile(r"^(?P<phase>connect|initialize|disconnect)\s+local\[(?P<local>[^\]]*)\]\s+"
                       r"remote\[(?P<remote>[^\]]*)\]")


def _time(text):
    text = text.replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.datetime.fromisoformat(text).astimezone(datetime.timezone.utc)


def parse(path_or_text, user_map=None, desktop_map=None, domain_prefix="desk-", **_ignored):
    report = ImportReport()
    rows, open_by_client = [], {}
    for lineno, raw in enumerate(read_text(path_or_text).splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if not match:
            report.skip("not_an_event")
            continue
        report.read += 1
        if not match.group("ts"):
            report.reject("no_timestamp", lineno, "run virsh event with --timestamp")
            continue
        try:
            at = _time(match.group("ts"))
        except ValueError as exc:
            report.reject("bad_time", lineno, exc)
            continue
        domain, kind, rest = match.group("domain"), match.group("kind"), match.group("rest")
        if kind == "lifecycle":
            if rest.startswith("Stopped"):
                for key in [k for k in open_by_client if k[0] == domain]:
                    _close(open_by_client.pop(key), at, "domain_stopped")
            report.skip("lifecycle")
            continue
        if kind != "graphics":
            report.skip("other_event")
            continue
        graphics = _GRAPHICS.match(rest)
        if not graphics:
            report.reject("bad_graphics_event", lineno, rest)
            continue
        user = map_name(user_map, domain) or (domain[len(domain_prefix):] if domain_prefix and
                                              domain.startswith(domain_prefix) else None)
        if not user:
            report.skip("unmapped_domain")
            continue
        key, phase = (domain, graphics.group("remote")), graphics.group("phase")
        if phase == "connect":
            if key in open_by_client:
                _close(open_by_client.pop(key), at, "superseded")
            row = {"user": user, "desktop": map_name(desktop_map, domain, domain), "start": at, "end": None,
                   "tz_offset_min": None, "line": lineno, "initialized": False, "end_reason": "still_open_at_end"}
            open_by_client[key] = row
            rows.append(row)
        elif phase == "initialize":
            if key in open_by_client:
                open_by_client[key]["initialized"] = True
        elif key in open_by_client:
            _close(open_by_client.pop(key), at, "disconnect")
        else:
            report.skip("disconnect_without_connect")
    kept = [r for r in rows if r.pop("initialized")]
    if len(kept) < len(rows):
        report.skip("never_initialized", len(rows) - len(kept))
    report.parsed = len(kept)
    return kept, report


def _close(row, at, reason):
    row["end"] = max(at, row["start"])
    row["end_reason"] = reason
