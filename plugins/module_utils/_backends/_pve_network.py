# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: a desktop's network shadow on Proxmox VE: ``net1`` on the shadow bridge, cluster IP sets, VM rules.

What the shadow is and what must change is decided in ``_decisions/pve_network``; this file reads the VM's
config, its firewall rules and options and the cluster's IP sets, and sends the changes in an order that never
leaves a gap: IP sets are filled before a rule references them, new rules stand before the old ones are
deleted, the VM firewall is turned on after its rules exist, and an IP set is deleted only when no rule of any
VM, of the cluster or of a security group references it any more (PVE itself does not check that).
``net0`` and every other NIC are never changed.

The backend's own reads and calls are passed in (``get(path, what, **params)``, ``run(method, path, what, vm,
**params)``), so this file does not depend on how the backend talks HTTP.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import pve_network as pn
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import Conflict, OperationRefused

IPSETS = "cluster/firewall/ipset"


def _enabled(options):
    return str((options or {}).get("enable") or "0") not in ("0", "")


class PveNetworkShadow(object):
    """The network shadow of the desktops of one Proxmox VE connection."""

    def __init__(self, backend, get, run):
        self.backend = backend
        self.get = get
        self.run = run

    # -- reads ------------------------------------------------------------------------------------------------
    def _rules(self, vm):
        return self.get(vm.path + "/firewall/rules", "read the firewall rules of %s" % vm.name) or []

    def _options(self, vm):
        return self.get(vm.path + "/firewall/options", "read the firewall options of %s" % vm.name) or {}

    def _set_names(self):
        return {s["name"] for s in (self.get(IPSETS, "list the cluster's IP sets") or [])}

    def _entries(self, name):
        return self.get("%s/%s" % (IPSETS, name), "read the IP set %s" % name) or []

    def _read(self, name):
        backend = self.backend
        vm = backend._vm(name)
        conf = backend._current(vm)
        # the config as it will be at the next start (pending changes applied): a net1 that could not be
        # hot-plugged (or unplugged) is there, and must neither be added twice nor left behind
        upcoming = self.get(vm.path + "/config", "read the configuration of %s" % vm.name) or {}
        status = backend._status(vm)
        rules = self._rules(vm)
        options = self._options(vm)
        others = [key for key in sorted(conf) if key.startswith("net") and key[3:].isdigit() and key != pn.NIC_KEY]
        firewalled = [key for key in others if pn.parse_nic(conf[key]).get("firewall") in ("1", "on", "yes", "true")]
        return {"vm": vm, "conf": conf, "running": status.get("status") == "running", "rules": rules,
                "firewall_on": _enabled(options), "firewalled": firewalled, "nic": conf.get(pn.NIC_KEY),
                "nic_next": upcoming.get(pn.NIC_KEY)}

    def _references_elsewhere(self, names, skip_vmid):
        """The subset of IP set ``names`` that a rule outside VM ``skip_vmid`` references."""
        if not names:
            return set()
        found = pn.referenced_sets(self.get("cluster/firewall/rules", "read the cluster's firewall rules") or [])
        for group in self.get("cluster/firewall/groups", "list the security groups") or []:
            found |= pn.referenced_sets(self.get("cluster/firewall/groups/%s" % group["group"],
                                                 "read the security group %s" % group["group"]) or [])
        guests = self.get("cluster/resources", "list the cluster's guests", type="vm") or []
        for item in guests:   # containers reference cluster IP sets too
            if item.get("type") not in ("qemu", "lxc") or int(item["vmid"]) == int(skip_vmid):
                continue
            found |= pn.referenced_sets(self.get("nodes/%s/%s/%s/firewall/rules" % (item["node"], item["type"],
                                                                                    item["vmid"]),
                                                 "read the firewall rules of guest %s" % item["vmid"]) or [])
        return set(names) & found

    # -- writes -----------------------------------------------------------------------------------------------
    def _set_nic(self, state, value):
        vm = state["vm"]
        params = {pn.NIC_KEY: value} if value is not None else {"delete": pn.NIC_KEY}
        self.run("post", vm.path + "/config", "%s the shadow NIC of %s" % ("set" if value else "remove", vm.name),
                 vm, **params)
        return self.backend._current(vm).get(pn.NIC_KEY)

    def _fill_set(self, item, exists, plan):
        name = item["name"]
        if not exists:
            try:
                self.run("post", IPSETS, "create the IP set %s" % name, None, name=name,
                         comment=pn.set_comment(item["reason"]))
            except OperationRefused as exc:
                # another desktop with the same list created it since we looked: fill what it lacks
                if "already exists" not in str(exc.details.get("errors", {}).get("name", "")):
                    raise
                plan = pn.entries_plan(self._entries(name), item["cidrs"])
        for cidr in plan["remove"]:
            self.run("delete", "%s/%s/%s" % (IPSETS, name, cidr), "remove %s from the IP set %s" % (cidr, name))
        for cidr in plan["add"]:
            self.run("post", "%s/%s" % (IPSETS, name), "add %s to the IP set %s" % (cidr, name), None, cidr=cidr)

    def _delete_rules(self, vm, keep_first):
        """Delete our rules below the first ``keep_first`` positions, highest first, each with the digest of what
        was just read (a concurrent edit fails the call instead of deleting the wrong rule)."""
        while True:
            rules = self._rules(vm)
            doomed = [r for r in rules if pn.is_ours(r) and int(r["pos"]) >= keep_first]
            if not doomed:
                return
            last = max(doomed, key=lambda r: int(r["pos"]))
            self.run("delete", "%s/firewall/rules/%d" % (vm.path, int(last["pos"])),
                     "delete a network shadow rule of %s" % vm.name, vm, digest=last.get("digest"))

    def _set_firewall(self, vm, on):
        params = {"enable": 1} if on else {"delete": "enable"}
        self.run("put", vm.path + "/firewall/options", "turn the firewall of %s %s" % (vm.name, "on" if on else "off"),
                 vm, **params)

    def _release_sets(self, names, vmid):
        """Delete the IP sets among ``names`` that nothing references any more; the names deleted."""
        present = self._set_names()
        candidates = sorted(n for n in names if n in present)
        kept = self._references_elsewhere(candidates, vmid)
        released = []
        for name in candidates:
            if name not in kept:
                self.run("delete", "%s/%s" % (IPSETS, name), "delete the IP set %s" % name, None, force=1)
                released.append(name)
        return released

    # -- the two states ---------------------------------------------------------------------------------------
    def present(self, name, bridge, rate_mbit, entries, all_interfaces, check_mode=False):
        state = self._read(name)
        vm = state["vm"]
        if not state["running"]:
            raise Conflict("Desktop %s is not running: the network shadow is set up at login, on a running desktop"
                           % name, desktop=name)
        if state["nic"] is not None and not pn.nic_is_ours(state["nic"], name):
            raise Conflict("%s of desktop %s is not its shadow NIC (%s): ShadowDesk never takes over a NIC it did "
                           "not add; move that NIC to another netN" % (pn.NIC_KEY, name, state["nic"]),
                           desktop=name)
        wanted_nic = pn.nic_value(name, bridge, rate_mbit, state["nic"])
        sets = pn.wanted_sets(entries)
        if sets:
            cluster = self.get("cluster/firewall/options", "read the datacenter firewall options") or {}
            if not _enabled(cluster):
                raise Conflict("The datacenter firewall of this Proxmox VE cluster is off, so a block list would not "
                               "be enforced: turn it on (Datacenter > Firewall > Options) or give no block list",
                               desktop=name)
            if not state["firewall_on"] and state["firewalled"]:
                others = ", ".join(state["firewalled"])
                raise Conflict("The firewall of desktop %s is off and %s has firewall=1: turning it on for the block "
                               "list would change what %s lets through; turn the VM firewall on yourself (or "
                               "firewall=0 there) and rerun" % (name, others, others), desktop=name)
        toggle, mark = pn.firewall_plan(state["firewall_on"], bool(sets), pn.marks_firewall(state["rules"]))
        wanted_rules = pn.wanted_rules(sets, None if all_interfaces else pn.NIC_KEY, mark)
        rules_plan = pn.rules_plan(state["rules"], wanted_rules)
        existing = self._set_names() if sets else set()
        set_work = []
        for item in sets:
            exists = item["name"] in existing
            plan = pn.entries_plan(self._entries(item["name"]) if exists else [], item["cidrs"])
            if not exists or plan["add"] or plan["remove"]:
                set_work.append((item, exists, plan))
        stale = pn.referenced_sets([r for r in state["rules"] if pn.is_ours(r)]) - {s["name"] for s in sets}

        steps = []
        if pn.nic_differs(state["nic_next"], wanted_nic):
            steps.append("attach_nic" if state["nic"] is None else "update_nic")
        if set_work:
            steps.append("fill_ipsets")
        if rules_plan["create"] or rules_plan["delete"]:
            steps.append("block" if sets else "unblock")
        if toggle:
            steps.append("firewall_" + toggle)
        nic_step = bool(set(steps) & {"attach_nic", "update_nic"})
        # what the running VM will have after this run (check mode: a change is assumed to be hot-plugged)
        nic_now = wanted_nic if (nic_step and check_mode) else state["nic"]
        released = []
        if not check_mode:
            if nic_step:
                nic_now = self._set_nic(state, wanted_nic)
            for item, exists, plan in set_work:
                self._fill_set(item, exists, plan)
            for params in rules_plan["create"]:
                self.run("post", vm.path + "/firewall/rules", "add a network shadow rule to %s" % name, vm, **params)
            if rules_plan["delete"]:
                self._delete_rules(vm, len(rules_plan["create"]))
            if toggle:
                self._set_firewall(vm, toggle == "on")
            released = self._release_sets(stale, vm.vmid) if stale else []
        else:
            released = sorted(stale - self._references_elsewhere(stale, vm.vmid)) if stale else []
        if released:
            steps.append("release_ipsets")
        pending = pn.nic_differs(nic_now, wanted_nic)
        firewalled = [pn.NIC_KEY] + (state["firewalled"] if all_interfaces else [])
        return {
            "nic": dict(self._nic_facts(wanted_nic, bridge), pending=pending),
            "blocked": [{"name": s["name"], "reason": s["reason"], "entries": len(s["cidrs"])} for s in sets],
            "rules": wanted_rules,
            "interfaces": firewalled if sets else [],
            "ipsets_released": released,
            "steps": steps,
            "before": self._summary(state["nic_next"], state["rules"], state["firewall_on"]),
            "after": {"nic": wanted_nic, "rules": [r["comment"] + " " + r["type"] for r in wanted_rules],
                      "firewall": state["firewall_on"] if toggle is None else toggle == "on"},
        }

    def absent(self, name, check_mode=False):
        state = self._read(name)
        vm = state["vm"]
        mine = [r for r in state["rules"] if pn.is_ours(r)]
        turn_off = state["firewall_on"] and pn.marks_firewall(mine)
        # a removal already pending (no network hot-plug) is not asked for again: it happens at the next start
        ours_nic = pn.nic_is_ours(state["nic_next"], name)
        sets = pn.referenced_sets(mine)
        steps = (["unblock"] if mine else []) + (["firewall_off"] if turn_off else [])
        nic_left = state["nic"] if pn.nic_is_ours(state["nic"], name) else None
        if check_mode:
            released = sorted(sets - self._references_elsewhere(sets, vm.vmid)) if sets else []
        else:
            if mine:
                self._delete_rules(vm, 0)
            if turn_off:
                self._set_firewall(vm, False)
            released = self._release_sets(sets, vm.vmid) if sets else []
            if ours_nic:
                left = self._set_nic(state, None)
                nic_left = left if pn.nic_is_ours(left, name) else None
        if released:
            steps.append("release_ipsets")
        if ours_nic:
            steps.append("detach_nic")
        if check_mode and ours_nic:
            nic_left = None   # assumed to be hot-unplugged
        pending = {"key": pn.NIC_KEY, "pending_removal": True, "value": nic_left} if nic_left else None
        return {"nic": pending, "blocked": [], "rules": [], "interfaces": [], "ipsets_released": released,
                "steps": steps, "before": self._summary(state["nic_next"] if ours_nic else None, state["rules"],
                                                        state["firewall_on"]),
                "after": {"nic": None, "rules": [], "firewall": state["firewall_on"] and not turn_off}}

    @staticmethod
    def _nic_facts(value, bridge):
        parsed = pn.parse_nic(value)
        return {"key": pn.NIC_KEY, "mac": parsed.get("mac"), "bridge": bridge, "rate_mb_s": parsed.get("rate"),
                "firewall": True, "value": value}

    @staticmethod
    def _summary(nic, rules, firewall_on):
        return {"nic": nic, "rules": [r["comment"] + " " + r["type"] for r in rules if pn.is_ours(r)],
                "firewall": firewall_on}
