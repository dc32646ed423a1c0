# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: time values as the store takes and keeps them.

Times are timezone-aware UTC ``datetime`` objects in Python and fixed-width ISO-8601 ``...Z`` strings in the
database (both SQLite and PostgreSQL keep them as text), so string comparison in SQL is time comparison.
"""

from __future__ import annotations

import datetime

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = datetime.timezone.utc
_DB_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_time(value, default_offset_min=None):
    """A tz-aware UTC datetime from a datetime or an ISO-8601 string (``_time.to_utc``).

    Naive values are ambiguous (whose local time?), so they are refused unless the caller knows the offset.
    Raises ValueError with a short reason (the importers report it per line).
    """
    try:
        return _time.to_utc(value, "time", default_offset_min)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


def format_time(dt):
    """The stored form: fixed width, so SQL string order is time order."""
    return dt.astimezone(UTC).strftime(_DB_FORMAT)


def load_time(text):
    return None if text is None else datetime.datetime.strptime(text, _DB_FORMAT).replace(tzinfo=UTC)


def opt_time(value):
    return None if value is None else format_time(parse_time(value))


def now_text():
    return format_time(datetime.datetime.now(UTC))
