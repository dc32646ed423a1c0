# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE doc fragment: the runtime data directory of the controller-side modules (docs/architecture.md,
Runtime state)."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  data_dir:
    description:
      - Directory of the ShadowDesk runtime state on the controller - the embedded SQLite history store
        C(history.sqlite3) (unless O(history_url)), C(models/), C(plans/), C(network/plan.json), reports.
      - Default env E(SHADOWDESK_DATA_DIR), else C(~/.local/share/shadowdesk).
    type: path
"""
