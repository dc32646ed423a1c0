# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: flow export files (CSV or JSON) -> flow records, for the anonymising aggregation of
``_decisions/flow_aggregate.py``."""

from __future__ import annotations

import csv
import io
import json

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.flow_aggregate import FIELD_ALIASES, REQUIRED
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput


def read_records(text, fmt=None, source="flow file"):
    """Flow records from CSV or JSON text (a list of objects, or one object per line). Malformed -> InvalidInput."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("%s is empty" % source, source=source)
    stripped = text.lstrip()
    fmt = fmt or ("json" if stripped[:1] in "[{" else "csv")
    if fmt == "json":
        try:
            data = json.loads(text)
        except ValueError:
            try:
                data = [json.loads(line) for line in text.splitlines() if line.strip()]
            except ValueError as exc:
                raise InvalidInput("%s is not JSON (%s)" % (source, exc), source=source) from None
        if isinstance(data, dict):
            data = data.get("flows", [data])
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InvalidInput("%s: expected a list of flow objects" % source, source=source)
        return data
    if fmt != "csv":
        raise InvalidInput("unknown flow format %r (csv or json)" % fmt)
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [f for f in REQUIRED if not any(a in header for a in FIELD_ALIASES[f])]
    if missing:
        raise InvalidInput("%s: no column for %s (header: %s)" % (source, ", ".join(missing), ", ".join(header)[:200]),
                           source=source)
    return list(reader)
