# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: time values as the store takes and keeps them.

Times are timezone-aware UTC ``datetime`` objects in Python and fixed-width ISO-8601 ``...Z`` strings in the
database (both SQLite and PostgreSQL keep them as text), so string comparison in SQL is time comparison.
"""

from __future__ import annotations

import datetime

UTC = datetime.timezone.utc
_DB_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_time(value, default_offset_min=None):
    """A tz-aware UTC datetime from a datetime or an ISO-8601 string.

    Naive values are ambiguous (whose local time?), so they are refused unless the caller knows the offset.
    Raises ValueError with a short reason.
    """
    if isinstance(value, datetime.datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("empty time")
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("not an ISO-8601 time: %r" % value[:40]) from None
    else:
        raise ValueError("not a time: %r" % (value,))
    if dt.tzinfo is None or dt.utcoffset() is None:
        if default_offset_min is None:
            raise ValueError("time without a UTC offset: %r" % (str(value)[:40],))
        dt = dt.replace(tzinfo=datetime.timezone(datetime.timedelta(minutes=int(default_offset_min))))
    return dt.astimezone(UTC)


def format_time(dt):
    """The stored form: fixed width, so SQL string order is time order."""
    return dt.astimezone(UTC).strftime(_DB_FORMAT)


def load_time(text):
    return None if text is None else datetime.datetime.strptime(text, _DB_FORMAT).replace(tzinfo=UTC)


def opt_time(value):
    return None if value is None else format_time(parse_time(value))


def now_text():
    return format_time(datetime.datetime.now(UTC))
