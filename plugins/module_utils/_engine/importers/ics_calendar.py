# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: busy/free intervals from an iCalendar (ICS) file, for users who opted in.

A meeting block or a day off explains why a regular user will not log in, so calendars sharpen forecasts. They are
also personal: the consent check happens *before* the file is opened (``consented_users`` must contain ``user``),
and only start, end and busy/free leave this parser; titles, attendees and locations are never read out.

Handled: DTSTART, DTEND or DURATION, all-day dates, TRANSP (TRANSPARENT = free), STATUS:CANCELLED (skipped).
Recurring events (RRULE/RDATE) are not expanded, to avoid another dependency: their first instance is kept and
each such event is counted in ``skipped.recurrence_not_expanded`` with a warning. Floating (zone-less) times and
all-day dates are read at ``floating_tz_offset_min`` (default 0 = UTC), also with a warning.
"""

from __future__ import annotations

import datetime

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import ConsentRequired, ImportReport
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.importers._common import read_text

UTC = datetime.timezone.utc


def parse(path_or_text, user=None, consented_users=(), floating_tz_offset_min=0, **_ignored):
    if not user:
        raise InvalidInput("An ICS import needs the user the calendar belongs to")
    if user not in (consented_users or ()):
        raise ConsentRequired("User %r has not consented to calendar import; the calendar was not read" % (user,),
                              user=user)
    icalendar = _deps.require("icalendar")
    text = read_text(path_or_text)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise InvalidInput("Not a valid iCalendar file: %s" % exc) from None
    floating = datetime.timezone(datetime.timedelta(minutes=int(floating_tz_offset_min)))
    report, rows = ImportReport(), []
    for index, event in enumerate(calendar.walk("VEVENT"), start=1):
        report.read += 1
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            report.skip("cancelled")
            continue
        try:
            start, end = _bounds(event, floating, report)
        except (ValueError, TypeError, KeyError) as exc:
            report.reject("bad_time", index, type(exc).__name__)
            continue
        if end < start:
            report.reject("end_before_start", index)
            continue
        if event.get("RRULE") is not None or event.get("RDATE") is not None:
            report.skip("recurrence_not_expanded")
            report.warn("recurring events were imported as their first instance only (recurrences not expanded)")
        busy = str(event.get("TRANSP", "OPAQUE")).upper() != "TRANSPARENT"
        rows.append({"start": start, "end": end, "busy": busy, "line": index})
    report.parsed = len(rows)
    return rows, report


def _bounds(event, floating, report):
    if event.get("DTSTART") is None:
        raise KeyError("DTSTART")
    start = event.decoded("DTSTART")
    if event.get("DTEND") is not None:
        end = event.decoded("DTEND")
    elif event.get("DURATION") is not None:
        end = start + event.decoded("DURATION")
    else:
        end = start + datetime.timedelta(days=1) if _is_date(start) else start
    return _utc(start, floating, report), _utc(end, floating, report)


def _is_date(value):
    return isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)


def _utc(value, floating, report):
    if _is_date(value):
        report.warn("all-day events were placed at UTC%+d min" % (floating.utcoffset(None).total_seconds() // 60))
        value = datetime.datetime.combine(value, datetime.time(), floating)
    elif value.tzinfo is None:
        report.warn("floating (zone-less) times were read at UTC%+d min"
                    % (floating.utcoffset(None).total_seconds() // 60))
        value = value.replace(tzinfo=floating)
    return value.astimezone(UTC)
