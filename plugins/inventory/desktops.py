# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: desktops
short_description: ShadowDesk desktops of libvirt hosts and Proxmox VE clusters as hosts
version_added: 0.1.0
description:
  - One host per desktop the collection manages (tagged as a shadow), on every hypervisor in O(hypervisors), with
    the variables C(shadowdesk_user), C(shadowdesk_state), C(shadowdesk_size), C(shadowdesk_node),
    C(shadowdesk_backend), C(shadowdesk_hypervisor) and, when a plan is found, C(shadowdesk_stage) and
    C(shadowdesk_planned_state) (the plan's current step for the desktop's user).
  - Groups C(user_<user>), C(state_<state>) and C(node_<node>), plus whatever the constructed options
    (O(compose), O(groups), O(keyed_groups)) add.
  - A Proxmox VE cluster is read with one request (C(/cluster/resources)); its listing has no balloon target and
    does not tell a paused VM from a running one, and the user is the one in the desktop's user tag (lower case,
    PVE's tag alphabet). A libvirt host is read domain by domain over one connection.
  - A hypervisor that cannot be reached fails the source with a clear message after at most O(timeout) seconds.
  - The file name must end in C(desktops.yml), C(desktops.yaml), C(shadowdesk.yml) or C(shadowdesk.yaml).
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [shadowdesk.vdi.desktops]
  hypervisors:
    description:
      - The hypervisors to read. Each is a dict with C(backend) (V(libvirt) or V(proxmox)), an optional C(name)
        (the C(shadowdesk_hypervisor) variable; default the URI or API host) and the connection options of the
        hypervisor modules (C(uri); C(api_host), C(api_port), C(api_user), C(api_token_id), C(api_token_secret),
        C(api_password), C(validate_certs), C(ca_path)).
      - Options left out come from the same environment variables as for the modules (C(LIBVIRT_DEFAULT_URI),
        C(PROXMOX_HOST), C(PROXMOX_USER), C(PROXMOX_TOKEN_ID), C(PROXMOX_TOKEN_SECRET), ...), so secrets need not be
        in the inventory file. TLS certificates are verified unless C(validate_certs=false).
    type: list
    elements: dict
    required: true
  plan_file:
    description:
      - Allocation plan to take C(shadowdesk_stage) from. Default C(<data_dir>/plans/latest.json) when it exists.
    type: path
  data_dir:
    description: Runtime data directory. Default C($SHADOWDESK_DATA_DIR), else C(~/.local/share/shadowdesk).
    type: path
  now:
    description: The time the plan is read at, ISO-8601 UTC (V(2026-11-23T07:30:00Z)). Empty means now.
    type: str
    default: ""
  timeout:
    description: Seconds to wait for a hypervisor's API before giving up on it.
    type: int
    default: 10
"""

EXAMPLES = r"""
# desktops.shadowdesk.yml
plugin: shadowdesk.vdi.desktops
hypervisors:
  - backend: proxmox
    name: pve-cluster-a
    api_host: pve1.example.com
    api_user: shadowdesk@pve
    api_token_id: inventory
    # api_token_secret from PROXMOX_TOKEN_SECRET (an AWX credential)
  - backend: libvirt
    uri: qemu+ssh://kvm7.example.com/system
keyed_groups:
  - key: shadowdesk_stage | default('none')
    prefix: stage
compose:
  ansible_host: name
groups:
  warm_now: shadowdesk_stage | default('') in ['warm', 'full']
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/shadowdesk-inventory
cache_timeout: 300
"""

import datetime
import os

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.shadowdesk.vdi.plugins.module_utils._argspec import CONNECTION_ARGS
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.select import select_backend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import desired_step, parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plan_schema
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError

FILE_ENDINGS = ("desktops.yml", "desktops.yaml", "shadowdesk.yml", "shadowdesk.yaml")
EXTRA_KEYS = ("backend", "name")
SIZE_KEYS = ("vcpus", "memory_mib", "max_vcpus", "max_memory_mib")


def connection_options(entry, timeout):
    """One ``hypervisors`` entry -> the backend options, with the modules' environment fallbacks and defaults."""
    if not isinstance(entry, dict):
        raise AnsibleParserError("each entry of hypervisors must be a dict, got %r" % (entry,))
    unknown = sorted(set(entry) - set(CONNECTION_ARGS) - set(EXTRA_KEYS))
    if unknown:
        raise AnsibleParserError("hypervisors entry has unknown keys %s (allowed: %s)"
                                 % (", ".join(unknown), ", ".join(sorted(set(CONNECTION_ARGS) | set(EXTRA_KEYS)))))
    options = {}
    for key, spec in CONNECTION_ARGS.items():
        value = entry.get(key)
        if value is None:
            names = spec["fallback"][1] if spec.get("fallback") else []
            value = next((os.environ[n] for n in names if n in os.environ), spec.get("default"))
        if value is not None and spec.get("type") == "int":
            value = int(value)
        elif value is not None and spec.get("type") == "bool":
            value = boolean(value, strict=True)
        options[key] = value
    options["api_timeout"] = int(entry.get("api_timeout") or timeout)
    return options


def plan_stages(plan, now):
    """desktop -> (stage, planned state) of the plan's current step for its user."""
    out = {}
    for entry in (plan or {}).get("users", {}).values():
        step = desired_step(entry.get("steps") or [], now)
        if step is not None:
            out[entry["desktop"]] = (step["stage"], step["state"])
    return out


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "shadowdesk.vdi.desktops"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(FILE_ENDINGS)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        desktops = None
        if use_cache:
            try:
                desktops = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if desktops is None:
            desktops = self._read_hypervisors()
        if update_cache:
            self._cache[cache_key] = desktops
        self._populate(desktops)

    def _read_hypervisors(self):
        desktops = []
        for entry in self.get_option("hypervisors"):
            options = connection_options(entry, self.get_option("timeout"))
            where = entry.get("name") or (options["uri"] if options["backend"] == "libvirt" else options["api_host"])
            try:
                backend = select_backend(options["backend"], options)
                try:
                    found = backend.summaries()
                finally:
                    backend.close()
            except ShadowDeskError as exc:
                raise AnsibleParserError("shadowdesk.vdi.desktops: cannot read hypervisor %s: %s"
                                         % (where, to_native(exc))) from None
            desktops.extend(dict(summary, hypervisor=where) for summary in found)
        return desktops

    def _plan(self):
        path = self.get_option("plan_file")
        if not path:
            data_dir = self.get_option("data_dir") or default_data_dir()
            path = os.path.join(os.path.expanduser(data_dir), "plans", "latest.json")
            if not os.path.exists(path):
                return None
        try:
            return plan_schema.read_plan(path)
        except ShadowDeskError as exc:
            raise AnsibleParserError("shadowdesk.vdi.desktops: %s" % to_native(exc)) from None

    def _populate(self, desktops):
        try:
            now = (parse_time(self.get_option("now"), "now") if self.get_option("now")
                   else datetime.datetime.now(datetime.timezone.utc))
        except ShadowDeskError as exc:
            raise AnsibleParserError("shadowdesk.vdi.desktops: %s" % to_native(exc)) from None
        stages = plan_stages(self._plan(), now)
        strict = self.get_option("strict")
        for desktop in desktops:
            host = desktop["name"]
            self.inventory.add_host(host)
            stage, planned = stages.get(host, (None, None))
            hostvars = {
                "shadowdesk_user": desktop.get("user"), "shadowdesk_state": desktop.get("state"),
                "shadowdesk_node": desktop.get("node"), "shadowdesk_backend": desktop.get("backend"),
                "shadowdesk_backend_id": desktop.get("backend_id"), "shadowdesk_hypervisor": desktop["hypervisor"],
                "shadowdesk_size": {k: desktop.get(k) for k in SIZE_KEYS},
                "shadowdesk_stage": stage, "shadowdesk_planned_state": planned,
            }
            for key, value in hostvars.items():
                self.inventory.set_variable(host, key, value)
            for prefix, value in (("user", desktop.get("user")), ("state", desktop.get("state")),
                                  ("node", desktop.get("node"))):
                if value:
                    group = self.inventory.add_group(self._sanitize_group_name("%s_%s" % (prefix, value)))
                    self.inventory.add_child(group, host)
            self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)
