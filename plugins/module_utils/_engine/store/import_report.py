# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: what an import did (parsers and the store fill it), for humans and ``history_import``'s result."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List


@dataclass
class ImportReport:
    """What an import did, for humans and for ``history_import``'s return value.

    A parser fills ``read`` (records seen), ``parsed`` (rows produced), ``skipped`` (records that are not sessions,
    by reason: not errors) and parse-level ``rejected``; the store fills ``added`` / ``duplicates`` / ``updated``
    and store-level ``rejected``. :meth:`merge` combines the two.
    """

    read: int = 0
    parsed: int = 0
    added: int = 0
    duplicates: int = 0
    updated: int = 0
    rejected: Dict[str, int] = field(default_factory=dict)
    skipped: Dict[str, int] = field(default_factory=dict)
    examples: List[Dict[str, Any]] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    MAX_EXAMPLES = 5

    def reject(self, reason, line=None, detail=""):
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if len(self.examples) < self.MAX_EXAMPLES:
            self.examples.append({"line": line, "reason": reason, "detail": str(detail)[:200]})

    def skip(self, reason, n=1):
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def warn(self, msg):
        if msg not in self.warnings:
            self.warnings.append(msg)

    @property
    def rejected_total(self):
        return sum(self.rejected.values())

    def merge(self, store_report):
        """Add the store's outcome to this parse report (in place) and return self."""
        self.added += store_report.added
        self.duplicates += store_report.duplicates
        self.updated += store_report.updated
        for reason, n in store_report.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        room = self.MAX_EXAMPLES - len(self.examples)
        self.examples.extend(store_report.examples[:max(room, 0)])
        for w in store_report.warnings:
            self.warn(w)
        return self

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["rejected_total"] = self.rejected_total
        return data
