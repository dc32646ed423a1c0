"""Errors of the Proxmox VE stand-in, shared by its endpoint modules (``pve_api_server``, ``pve_firewall``).

PVE answers a ``die "..."`` in an API handler with HTTP 500 and the message as the status line and ``message``;
``raise_param_exc`` gives HTTP 400 "Parameter verification failed." with per-parameter ``errors``.
"""
from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # imported by the stand-in run as a script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pve_schema as schema_mod  # type: ignore[no-redef]
else:
    from . import pve_schema as schema_mod

ParameterError = schema_mod.ParameterError


class PveError(Exception):
    """An API error: HTTP status + PVE message (+ per-parameter errors for 400)."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def fail(message: str, status: int = 500) -> PveError:
    return PveError(status, message)


def param_error(param: str, message: str) -> ParameterError:
    return ParameterError({param: message if message.endswith("\n") else message + "\n"})
