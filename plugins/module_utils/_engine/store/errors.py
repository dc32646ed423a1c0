# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the store's failures (ShadowDeskError subclasses, so every entry point reports them cleanly)."""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput, ShadowDeskError


class StoreUnavailable(ShadowDeskError):
    """The history database cannot be opened or written (unwritable directory, locked, corrupt, newer schema,
    server down, login refused)."""


class ConsentRequired(InvalidInput):
    """Calendar data was offered for a user who has not opted in."""
