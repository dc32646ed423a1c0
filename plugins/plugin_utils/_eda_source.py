# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: what the collection's EDA source plugins share: their connection options and their start-up checks.

The sources take the same connection options as the modules (``_argspec.CONNECTION_ARGS``: ``backend``, ``uri``,
``api_host`` ...) with the same environment fallbacks (``LIBVIRT_DEFAULT_URI``, ``PROXMOX_TOKEN_SECRET`` ...), so a
rulebook activation configured like a job template reaches the same hypervisor.
"""

from __future__ import annotations

import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._argspec import CONNECTION_ARGS
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

_CASTS = {"int": int, "str": str, "path": os.path.expanduser}


def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("not a boolean: %r" % value)


def option(args, name, kind, default=None, env=None):
    """``args[name]``, else the first set environment variable of ``env``, else ``default``; cast to ``kind``."""
    value = args.get(name)
    if value is None:
        for var in env or ():
            if os.environ.get(var):
                value = os.environ[var]
                break
    if value is None:
        return default
    try:
        return _bool(value) if kind == "bool" else (float(value) if kind == "float" else _CASTS[kind](value))
    except (TypeError, ValueError):
        raise InvalidInput("Source option %s must be a %s (got %r)" % (name, kind, value)) from None


def backend_options(args):
    """The backend connection options from the source's ``args`` and the environment."""
    options = {}
    for name, spec in CONNECTION_ARGS.items():
        env = spec["fallback"][1] if "fallback" in spec else ()
        options[name] = option(args, name, spec["type"], spec.get("default"), env)
    if options["backend"] not in CONNECTION_ARGS["backend"]["choices"]:
        raise InvalidInput("backend must be one of %s" % ", ".join(CONNECTION_ARGS["backend"]["choices"]))
    return options
