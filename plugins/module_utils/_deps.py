# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the one place third-party libraries are imported, each guarded.

Sanity's import test loads module_utils without extras, and a hypervisor host may have only one client library.
``require(name)`` returns the module or raises MissingDependency with the pip/apt hint; modules turn that into
``missing_required_lib``-style messages.
"""

from __future__ import annotations

import importlib

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import MissingDependency

# import name -> (pip requirement, what it is for)
KNOWN = {
    "libvirt": ("libvirt-python", "the libvirt backend"),
    "proxmoxer": ("proxmoxer", "the Proxmox VE backend"),
    "requests": ("requests", "the Proxmox VE backend (HTTPS)"),
    "prophet": ("prophet", "login forecasts"),
    "pandas": ("pandas", "login forecasts and history analytics"),
    "numpy": ("numpy", "login forecasts and history analytics"),
    "holidays": ("holidays", "public holidays in forecasts"),
    "icalendar": ("icalendar", "importing opt-in ICS calendars"),
    "dask": ("dask[distributed]", "running forecasts on a Dask cluster"),
    "distributed": ("dask[distributed]", "running forecasts on a Dask cluster"),
    "yaml": ("PyYAML", "YAML plan files"),
    "jsonschema": ("jsonschema", "validating allocation plan files"),
    "jinja2": ("jinja2", "plan summaries"),
    "psycopg": ("psycopg[binary]", "the PostgreSQL history store (history_url)"),
}

_cache = {}


def require(name):
    """Import ``name`` (a top-level module) or raise MissingDependency with an install hint."""
    if name in _cache:
        return _cache[name]
    try:
        mod = importlib.import_module(name)
    except ImportError as exc:
        pip_name, purpose = KNOWN.get(name.split(".")[0], (name, "this feature"))
        raise MissingDependency(
            "The Python library %s is required for %s but could not be imported (%s). "
            "Install it with: pip install %s" % (pip_name, purpose, exc, pip_name),
            library=pip_name,
        ) from None
    _cache[name] = mod
    return mod
