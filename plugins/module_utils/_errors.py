# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: exception hierarchy of shadowdesk.vdi.

Backends, decisions and the engine raise these; only a module's or plugin's entry point turns them into
``fail_json`` / ``AnsibleError``. ``details`` travels into the failure result so users see structured context
(e.g. the per-parameter errors of a Proxmox HTTP 400) without a traceback.
"""

from __future__ import annotations


class ShadowDeskError(Exception):
    """Base of every error the collection reports to the user."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def __str__(self):
        return self.msg


class InvalidInput(ShadowDeskError):
    """The user's arguments, plan, history or profile are malformed or impossible (e.g. over the maximum)."""


class BackendUnavailable(ShadowDeskError):
    """The hypervisor cannot be reached or refuses the connection (daemon down, TLS, auth)."""


class MissingDependency(ShadowDeskError):
    """A required Python library is not installed where the code runs."""


class DesktopNotFound(ShadowDeskError):
    """The named desktop / VM does not exist on the backend."""


class OperationRefused(ShadowDeskError):
    """The hypervisor or guest refused an operation (hot-plug refused, VM locked, task failed, API error)."""


class Conflict(ShadowDeskError):
    """The desktop is in a state where the operation would lose data or cannot proceed."""
