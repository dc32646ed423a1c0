# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: time in one place. Stdlib only (decisions, engine, store and plugins all use it).

The collection's rules for time (docs/architecture.md):

* In Python a moment is a timezone-aware UTC ``datetime``; in files and JSON it is ``2026-11-23T07:30:00Z``
  (whole seconds). ``to_utc`` accepts either (or an ISO-8601 string with any offset) and refuses a naive value:
  whose local time would it be? A caller that knows the offset says so (``default_offset_min``).
* A user's local time is UTC plus the offset of their session (``tz_offset_min``): ``local_wall`` gives the naive
  wall-clock time, ``from_local_wall`` goes back. Offsets, not zone names: the history records the offset each
  session had, so a DST change is simply a session with another offset.
* Plans and forecasts live on a grid of slots of ``slot_minutes`` from a start: ``floor_to_slot``, ``slot_index``,
  ``slot_start``.
"""

from __future__ import annotations

import datetime as _dt

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = _dt.timezone.utc
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def to_utc(value, what="time", default_offset_min=None):
    """A datetime or ISO-8601 string (``...Z`` or with an offset) -> aware UTC datetime.

    Naive values raise ``InvalidInput`` naming ``what``, unless ``default_offset_min`` says whose local time they
    are. Anything else that is not a time raises ``InvalidInput`` too (never a bare ``ValueError``)."""
    if isinstance(value, _dt.datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        try:
            parsed = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput("%s %r is not an ISO-8601 time such as 2026-11-23T07:30:00Z" % (what, value[:40]),
                               value=value[:40]) from None
    else:
        raise InvalidInput("%s must be an ISO-8601 time string or a datetime, got %r" % (what, value),
                           value=repr(value)[:40])
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        if default_offset_min is None:
            raise InvalidInput("%s %r is naive (no UTC offset); use UTC with a Z suffix" % (what, str(value)[:40]),
                               value=str(value)[:40])
        parsed = parsed.replace(tzinfo=_dt.timezone(_dt.timedelta(minutes=int(default_offset_min))))
    return parsed.astimezone(UTC)


def to_utc_or_none(value, what="time"):
    """``to_utc``, with ``None`` and ``""`` passed through as ``None`` (an open session's end)."""
    return None if value is None or value == "" else to_utc(value, what)


def iso_z(moment):
    """Aware datetime -> ``2026-11-23T07:30:00Z`` (whole seconds, truncated); ``None`` stays ``None``."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidInput("cannot write the naive time %s: times must be timezone-aware" % moment.isoformat())
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def local_wall(moment, offset_min):
    """The naive wall-clock time of aware ``moment`` at UTC offset ``offset_min``."""
    return (to_utc(moment) + _dt.timedelta(minutes=int(offset_min or 0))).replace(tzinfo=None)


def from_local_wall(wall, offset_min):
    """The aware UTC moment of naive wall-clock ``wall`` at UTC offset ``offset_min``."""
    if wall.tzinfo is not None:
        raise InvalidInput("from_local_wall takes a naive wall-clock time, got %s" % wall.isoformat())
    return (wall - _dt.timedelta(minutes=int(offset_min or 0))).replace(tzinfo=UTC)


def utc_hour(value, what="time"):
    """Hour of day (0..23) in UTC of a datetime or ISO string."""
    return to_utc(value, what).hour


def _check_slot(slot_minutes):
    if isinstance(slot_minutes, bool) or not isinstance(slot_minutes, int) or slot_minutes <= 0:
        raise InvalidInput("slot_minutes must be a positive integer, got %r" % (slot_minutes,))


def floor_to_slot(moment, slot_minutes):
    """``moment`` floored to a slot boundary (slots counted from midnight UTC; ``slot_minutes`` divides a day)."""
    _check_slot(slot_minutes)
    moment = to_utc(moment)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = (moment - midnight).total_seconds() // 60
    return midnight + _dt.timedelta(minutes=minutes - minutes % slot_minutes)


def slot_index(start, moment, slot_minutes):
    """Index of the slot of a grid from ``start`` that holds ``moment`` (negative before ``start``)."""
    _check_slot(slot_minutes)
    return int((to_utc(moment) - to_utc(start)).total_seconds() // (60 * slot_minutes))


def slot_start(start, index, slot_minutes):
    """Start of slot ``index`` of a grid from ``start``."""
    _check_slot(slot_minutes)
    return to_utc(start) + _dt.timedelta(minutes=index * slot_minutes)
