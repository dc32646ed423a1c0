# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the controller's side of an autoscale task: which of its options stay on the controller, and under
which hypervisor key the policy state of its round is kept in the history store.

The key must name the hypervisor the round scales, whichever host the task runs on: a libvirt URI with a host
part (``qemu+ssh://hv1/system``) or a Proxmox VE API endpoint names it; a local URI (``qemu:///system``) names
the task's host, so the inventory host is added. ``state_key`` overrides it (two API endpoints of one cluster).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import HISTORY_STORE_ARGS

# Options of the autoscale task that never travel to the target: where the state is kept (the password included).
CONTROLLER_ARGS = dict(
    data_dir=dict(type="path"),
    keep_state=dict(type="bool", default=True),
    state_key=dict(type="str", no_log=False),  # a hypervisor name, not a secret
    **HISTORY_STORE_ARGS
)

# The module's own defaults (plugins/module_utils/_argspec.py), for connection options the task leaves out.
_DEFAULT_BACKEND = "libvirt"
_DEFAULT_URI = "qemu:///system"
_DEFAULT_PVE_PORT = 8006


def hypervisor_key(module_args, inventory_host):
    """The store key of the hypervisor a round with ``module_args`` (connection options) scales.

    ``libvirt qemu+ssh://hv1/system``, ``libvirt qemu:///system on hv1`` (local URI: the task's host),
    ``proxmox pve.example.com:8006``.
    """
    backend = module_args.get("backend") or os.environ.get("SHADOWDESK_BACKEND") or _DEFAULT_BACKEND
    if backend == "proxmox":
        host = module_args.get("api_host") or os.environ.get("PROXMOX_HOST")
        if not host:
            raise InvalidInput("autoscale keeps its state per hypervisor: set api_host (or state_key)")
        port = module_args.get("api_port") or os.environ.get("PROXMOX_PORT") or _DEFAULT_PVE_PORT
        return "proxmox %s:%s" % (host, port)
    uri = module_args.get("uri") or os.environ.get("LIBVIRT_DEFAULT_URI") or _DEFAULT_URI
    if urlsplit(uri).hostname:
        return "%s %s" % (backend, uri)
    return "%s %s on %s" % (backend, uri, inventory_host)
