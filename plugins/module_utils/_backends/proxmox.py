# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the Proxmox VE backend (``backend: proxmox``): the adapter between the model and the API.

What a shadow is on Proxmox VE: a linked clone (``full=0``) of a template VM, defined at full size (``cores`` x
``sockets`` = max vCPUs, ``memory`` = max MiB) and running at shadow size (``vcpus``, ``balloon``), with ``numa=1`` and
``hotplug=network,disk,usb,cpu,memory``, tagged ``shadowdesk`` + ``sd-user-<user>`` and with JSON metadata on a
``shadowdesk-meta:`` line of its description. The pure config <-> model mapping is in ``_pve_config``, the API
client (login, HTTP, tasks, locks) in ``_pve_client``, console clients and guest-agent users in ``_pve_activity``.

Decisions documented here (see also docs):
- ``remove`` needs ``remove_storage=true``: Proxmox VE deletes a VM's own disks with the VM (qemu-server
  ``destroy_vm`` removes every owned volume, ``unused[n]`` included), so a VM cannot be removed while its disk is
  kept. Without ``remove_storage`` we refuse (Conflict) instead of deleting the user's data.
- ``discard_saved_state`` deletes the hibernation image with ``PUT config delete=vmstate`` (qemu-server then also
  drops the ``suspended`` lock and ``runningmachine``/``runningcpu``). ``status/stop`` would not do it: ``vm_stop``
  returns at once for a VM without a QEMU process, so the image and the lock would stay.
- ``stop`` on a paused VM without ``force`` resumes it first: qemu-server refuses ``shutdown`` of a paused VM
  ("VM is paused - cannot shutdown").
- Tasks and transient locks are the client's (``_pve_client``).
"""

from __future__ import annotations

import datetime
import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_activity as _activity
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_config as pc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_network
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._pve_client import PveClient
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.base import DesktopBackend, measured
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    Conflict, DesktopNotFound, InvalidInput, OperationRefused, ShadowDeskError,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import STATE_PAUSED, STATE_RUNNING, STATE_SAVED, STATE_SHUTOFF


class _Vm(object):
    """Where a VM lives: vmid, node, name."""

    def __init__(self, vmid, node, name, entry=None):
        self.vmid = int(vmid)
        self.node = node
        self.name = name
        self.entry = entry or {}

    @property
    def path(self):
        return "nodes/%s/qemu/%d" % (self.node, self.vmid)


CONSOLE_TASK_TYPES = ("vncproxy", "spiceproxy")


def _now_iso():
    return _time.iso_z(datetime.datetime.now(_time.UTC))


class ProxmoxBackend(DesktopBackend):
    name = "proxmox"

    def __init__(self, options):
        super().__init__(options)
        self._pve = PveClient(options)
        self._configs = {}  # vmid -> running config seen by the last get() (for classify)
        self._located = {}  # name -> cluster/resources entries, read once by locate() for a batch

    def close(self):
        self._pve.close()

    # -- lookup -------------------------------------------------------------------------------------------------
    def _resources(self):
        items = self._pve.get("cluster/resources", "list the cluster's VMs", type="vm") or []
        return [i for i in items if i.get("type") == "qemu"]

    def locate(self, names):
        wanted = set(names)
        for name in wanted:  # read again (a migrated desktop's entry changes node); others stay as located
            self._located.pop(name, None)
        for item in self._resources():
            if item.get("name") in wanted:
                self._located.setdefault(item["name"], []).append(item)

    def _find(self, name):
        listing = self._located[name] if name in self._located else self._resources()
        matches = [i for i in listing if i.get("name") == name and not i.get("template")]
        if len(matches) > 1:
            managed = [i for i in matches if pc.MANAGED_TAG in pc.parse_tags(i.get("tags"))]
            if len(managed) != 1:
                raise Conflict("Several Proxmox VE VMs are named %s (vmids %s); rename all but one."
                               % (name, ", ".join(str(i.get("vmid")) for i in matches)), desktop=name)
            matches = managed
        if not matches:
            return None
        entry = matches[0]
        return _Vm(entry["vmid"], entry["node"], name, entry)

    def _vm(self, name):
        vm = self._find(name)
        if vm is None:
            raise DesktopNotFound("No Proxmox VE VM is named %s." % name, desktop=name)
        return vm

    def _current(self, vm):
        return self._pve.get(vm.path + "/config", "read the configuration of %s" % vm.name, current=1) or {}

    def _status(self, vm):
        return self._pve.get(vm.path + "/status/current", "read the status of %s" % vm.name) or {}

    def _facts(self, vm):
        current = self._current(vm)
        pending = self._pve.get(vm.path + "/pending", "read the pending changes of %s" % vm.name) or []
        status = self._status(vm)
        snaps = self._pve.get(vm.path + "/snapshot", "list the snapshots of %s" % vm.name) or []
        self._configs[str(vm.vmid)] = current
        return pc.facts_of(vm.name, vm.vmid, vm.node, status, current, pending, snaps)

    # -- facts --------------------------------------------------------------------------------------------------
    def get(self, name):
        vm = self._find(name)
        return self._facts(vm) if vm is not None else None

    def list(self, user=None):
        out = []
        for entry in self._resources():
            tags = pc.parse_tags(entry.get("tags"))
            if entry.get("template") or pc.MANAGED_TAG not in tags:
                continue
            if user is not None and pc.user_tag(user) not in tags:
                continue
            facts = self._facts(_Vm(entry["vmid"], entry["node"], entry.get("name") or str(entry["vmid"]), entry))
            if user is None or facts.user == user:
                out.append(facts)
        return sorted(out, key=lambda f: f.name)

    def summaries(self):
        # one call for the whole cluster (an inventory of a thousand desktops must not cost a thousand requests)
        found = (pc.summary_of_resource(item) for item in self._resources())
        return sorted((s for s in found if s is not None), key=lambda s: s["name"])

    def activity(self, name):
        """Console clients = running vncproxy/spiceproxy/termproxy tasks of the VM (PVE keeps such a task alive
        while its console connection lasts); logged-in users from the guest agent (``agent/get-users``)."""
        vm = self._vm(name)
        current = self._current(vm)
        state = pc.power_state(self._status(vm), current)
        result = {"state": state, "consoles": [], "agent": "desktop not running", "agent_users": []}
        if state not in (STATE_RUNNING, STATE_PAUSED):
            return result
        tasks = self._pve.get("nodes/%s/tasks" % vm.node, "list the running tasks of %s" % name,
                              source="active", vmid=vm.vmid, limit=500) or []
        result["consoles"] = _activity.consoles_of(tasks)
        if not _activity.agent_enabled(current):
            result["agent"] = "not configured"
        elif state == STATE_PAUSED:
            result["agent"] = "no answer"
        else:
            try:
                answer = self._pve.get(vm.path + "/agent/get-users", "ask the guest agent of %s for logged-in users" % name)
                result["agent"], result["agent_users"] = "answered", _activity.agent_users_of(answer)
            except OperationRefused:  # agent not running in the guest (PVE answers 500): no signal
                result["agent"] = "no answer"
        return result

    def utilisation(self, name, interval=1.0):
        return measured(self.utilisation_many([name], interval)[name])

    def utilisation_many(self, names, interval=1.0):
        # every first status, one wait, every second status: N desktops cost one interval, not N
        out, firsts = {}, {}
        for name in names:
            try:
                vm = self._vm(name)
                firsts[name] = (vm, self._status(vm))
            except ShadowDeskError as exc:
                out[name] = exc
        wait = bool(interval) and any(status.get("status") == "running" for _vm, status in firsts.values())
        if wait:
            time.sleep(float(interval))
        for name, (vm, first) in firsts.items():
            try:
                second = self._status(vm) if wait and first.get("status") == "running" else first
                out[name] = _utilisation_of(first, second, float(interval or 0))
            except ShadowDeskError as exc:
                out[name] = exc
        return out

    def host_capacity(self, node=None):
        node = node or self.options.get("node")
        if not node:
            return None
        status = self._pve.get("nodes/%s/status" % node, "read the status of node %s" % node) or {}
        cpus = (status.get("cpuinfo") or {}).get("cpus")
        memory = status.get("memory") or {}
        if not cpus or memory.get("total") is None or memory.get("free") is None:
            return None
        mib = 1048576.0
        return {"cpus": float(cpus), "memory_mib": memory["total"] / mib, "free_memory_mib": memory["free"] / mib}

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def check_create(self, spec):
        self._template_for(spec)

    def _template_for(self, spec):
        """Every check of ``create`` that changes nothing; returns (template _Vm, target node)."""
        pc.check_name(spec.name)
        source = pc.template_vmid(spec.source)
        if spec.storage:
            raise InvalidInput("storage=%s cannot be used on Proxmox VE: a linked clone's disk lives on the "
                               "template's storage (PVE allows a target storage only for full clones)."
                               % spec.storage)
        pc.shadow_config(spec, {}, _now_iso())  # sizes
        if self._find(spec.name) is not None:
            raise Conflict("A Proxmox VE VM named %s already exists." % spec.name, desktop=spec.name)
        template = next((i for i in self._resources() if int(i.get("vmid", 0)) == source), None)
        if template is None:
            raise InvalidInput("Template VM %s does not exist on Proxmox VE." % source)
        if not template.get("template"):
            raise InvalidInput("VM %s is not a template: a shadow is a linked clone and PVE makes linked clones only "
                               "from templates (convert it with 'qm template %s')." % (source, source))
        tvm = _Vm(source, template["node"], template.get("name") or str(source))
        target = spec.node or self.options.get("node") or tvm.node
        status = self._pve.get("nodes/%s/status" % target, "read the status of node %s" % target) or {}
        node_mib = int((status.get("memory") or {}).get("total") or 0) // pc.MIB
        if node_mib and spec.max_memory_mib > node_mib:
            # PVE stores any size and fails only at the start; a desktop larger than its node is a typo or a bug.
            raise InvalidInput("max_memory_mib=%s is more than node %s has (%s MiB)"
                               % (spec.max_memory_mib, target, node_mib), node=target)
        return tvm, target

    def create(self, spec):
        tvm, target = self._template_for(spec)
        source = tvm.vmid
        newid = int(self._pve.get("cluster/nextid", "allocate a VM ID"))
        self._pve.run("post", tvm.path + "/clone", "clone template %s into %s" % (source, spec.name), tvm,
                      newid=newid, name=spec.name, full=0, target=target if target != tvm.node else None,
                      description=pc.format_description({"user": spec.user, "template": str(source), "state": "creating"}))
        vm = _Vm(newid, target, spec.name)
        try:
            clone_conf = self._current(vm)
            params = pc.shadow_config(spec, clone_conf, _now_iso())
            self._pve.run("post", vm.path + "/config", "size and tag the new shadow %s" % spec.name, vm, **params)
        except ShadowDeskError as exc:
            self._cleanup_new_clone(vm, exc)
            raise
        return self._facts(vm)

    def _cleanup_new_clone(self, vm, exc):
        """The linked clone was made a moment ago and holds no user data yet: remove it so a retry starts clean."""
        try:
            self._pve.run("delete", vm.path, "remove the half-created shadow %s" % vm.name, vm, purge=1)
        except ShadowDeskError as cleanup:
            exc.details["cleanup_error"] = str(cleanup)
            exc.msg += " (the new clone %s (vmid %s) could not be removed: %s)" % (vm.name, vm.vmid, cleanup)

    def _state(self, vm):
        """The power state alone (two reads, not the four of _facts): what the lifecycle steps check first."""
        return pc.power_state(self._status(vm), self._current(vm))

    def start(self, name):
        vm = self._vm(name)
        state = self._state(vm)
        if state in (STATE_RUNNING,):
            return
        if state == STATE_PAUSED:
            self.resume(name)
            return
        self._pve.run("post", vm.path + "/status/start", "start %s" % name, vm)

    def pause(self, name):
        vm = self._vm(name)
        state = self._state(vm)
        if state == STATE_PAUSED:
            return
        if state != STATE_RUNNING:
            raise Conflict("Cannot pause %s: it is %s, not running." % (name, state), desktop=name, state=state)
        self._pve.run("post", vm.path + "/status/suspend", "pause %s" % name, vm)

    def resume(self, name):
        vm = self._vm(name)
        state = self._state(vm)
        if state == STATE_RUNNING:
            return
        if state != STATE_PAUSED:
            raise Conflict("Cannot resume %s: it is %s, not paused (use start)." % (name, state),
                           desktop=name, state=state)
        self._pve.run("post", vm.path + "/status/resume", "resume %s" % name, vm)

    def save(self, name):
        vm = self._vm(name)
        state = self._state(vm)
        if state == STATE_SAVED:
            return
        if state not in (STATE_RUNNING, STATE_PAUSED):
            raise Conflict("Cannot save %s: it is %s; only a running or paused VM has RAM to save."
                           % (name, state), desktop=name, state=state)
        self._pve.run("post", vm.path + "/status/suspend", "hibernate %s" % name, vm, todisk=1)

    def stop(self, name, force=False):
        vm = self._vm(name)
        state = self._state(vm)
        if state in (STATE_SHUTOFF, STATE_SAVED):
            return  # nothing runs; a saved image is only dropped by discard_saved_state
        if force:
            self._pve.run("post", vm.path + "/status/stop", "power off %s" % name, vm)
            return
        if state == STATE_PAUSED:
            self._pve.run("post", vm.path + "/status/resume", "resume %s before shutting it down" % name, vm)
        self._pve.run("post", vm.path + "/status/shutdown", "shut down %s" % name, vm,
                      timeout=max(1, int(self._pve.task_timeout) - 5))

    def discard_saved_state(self, name):
        vm = self._vm(name)
        facts = self._facts(vm)
        if not facts.has_saved_state:
            return
        if facts.is_active:
            raise Conflict("%s is running; it has no hibernation image to discard." % name, desktop=name)
        self._pve.run("put", vm.path + "/config", "discard the saved state of %s" % name, vm, delete="vmstate")

    def remove(self, name, remove_storage=False):
        vm = self._find(name)
        if vm is None:
            return
        facts = self._facts(vm)
        if pc.MANAGED_TAG not in facts.tags:
            raise Conflict("Refusing to remove %s (vmid %s): it is not tagged '%s', so ShadowDesk did not create it."
                           % (name, vm.vmid, pc.MANAGED_TAG), desktop=name)
        if vm.entry.get("template"):
            raise Conflict("Refusing to remove %s: it is a template." % name, desktop=name)
        if not remove_storage:
            raise Conflict(
                "Refusing to remove %s without remove_storage=true: on Proxmox VE a VM's own disks (its linked-clone "
                "disk with the user's data%s) are always deleted with the VM; set remove_storage=true to delete "
                "them, or keep the desktop." % (name, " and its saved RAM image" if facts.has_saved_state else ""),
                desktop=name, disks=[d.source for d in facts.disks])
        if facts.is_active:
            raise Conflict("Cannot remove %s: it is %s; stop it first." % (name, facts.state), desktop=name)
        self._pve.run("delete", vm.path, "remove %s" % name, vm, purge=1, **{"destroy-unreferenced-disks": 1})

    def migrate(self, name, node):
        vm = self._vm(name)
        if vm.node == node:
            return
        facts = self._facts(vm)
        self._pve.run("post", vm.path + "/migrate", "move %s from %s to %s" % (name, vm.node, node), vm,
                      target=node, online=1 if facts.is_active else None)
        self._located.pop(name, None)  # the batch's listing still places it on the old node

    # -- console clients ----------------------------------------------------------------------------------------
    def console_clients(self):
        """Viewers attached to each managed desktop now: ``{name: [task, ...]}`` from the running ``vncproxy`` /
        ``spiceproxy`` tasks (PVE runs one per viewer for as long as it stays connected)."""
        managed = {}
        for entry in self._resources():
            if not entry.get("template") and pc.MANAGED_TAG in pc.parse_tags(entry.get("tags")):
                managed[(entry.get("node"), str(entry.get("vmid")))] = entry.get("name") or str(entry.get("vmid"))
        clients = {}
        for node in sorted({node for node, _vmid in managed}):
            tasks = self._pve.get("nodes/%s/tasks" % node, "list the console tasks on %s" % node, source="active",
                                  limit=1000) or []
            for task in tasks:
                name = managed.get((node, str(task.get("id"))))
                if name is not None and task.get("type") in CONSOLE_TASK_TYPES:
                    clients.setdefault(name, []).append(task)
        return clients

    # -- resources ----------------------------------------------------------------------------------------------
    def _running_conf(self, facts):
        conf = self._configs.get(str(facts.backend_id))
        if conf is None:
            vm = _Vm(facts.backend_id, facts.node, facts.name)
            conf = self._current(vm)
            self._configs[str(facts.backend_id)] = conf
        return conf

    def classify(self, facts, change):
        return pc.classify(facts, self._running_conf(facts), change)

    def apply(self, facts, changes):
        if not changes:
            return []
        vm = self._vm(facts.name)
        current = self._current(vm)
        pending_items = self._pve.get(vm.path + "/pending", "read the pending changes of %s" % facts.name) or []
        state = pc.power_state(self._status(vm), current)
        if state == STATE_SAVED:
            raise pc.hibernated_conflict(facts.name)
        nxt = pc.split_pending(current, pending_items)[0]
        params, delete, touched = pc.change_params(nxt, changes)
        if delete:
            params["delete"] = ",".join(delete)
        what = "change the resources of %s" % facts.name
        try:
            self._pve.run("post", vm.path + "/config", what, vm, **params)
        except OperationRefused as exc:
            exc.details["pending"] = self._pending_keys(vm, strict=False)
            exc.msg += " (what Proxmox VE could not hot-plug stays pending for the next start; nothing was removed)"
            raise
        pending = self._pending_keys(vm)
        active = state in (STATE_RUNNING, STATE_PAUSED)
        out = []
        for change, (mode, reason) in zip(changes, pc.outcome_modes(active, touched, pending)):
            change.mode, change.reason = mode, reason
            out.append(change)
        self._configs.pop(str(vm.vmid), None)
        return out

    def _pending_keys(self, vm, strict=True):
        """``{key: pending value}`` as PVE reports it now (``strict=False``: {} when it cannot be read)."""
        try:
            items = self._pve.get(vm.path + "/pending", "read the pending changes of %s" % vm.name) or []
        except ShadowDeskError:
            if strict:
                raise
            return {}
        return pc.split_pending({}, items)[1]

    # -- network shadow (_pve_network) --------------------------------------------------------------------------
    def network_shadow(self):
        """net1 on the shadow bridge, cluster IP sets and VM rules of this connection's desktops."""
        return _pve_network.PveNetworkShadow(self, self._pve.get, self._pve.run)

    # -- saved user state ---------------------------------------------------------------------------------------
    def snapshot_create(self, name, snapshot, with_memory=True, description=""):
        pc.check_snapshot_name(snapshot)
        vm = self._vm(name)
        facts = self._facts(vm)
        if facts.state == STATE_SAVED:
            raise Conflict("Cannot snapshot %s while it is hibernated (lock 'suspended'); start it first." % name,
                           desktop=name)
        if any(s.name == snapshot for s in facts.snapshots):
            raise Conflict("%s already has a snapshot named %s." % (name, snapshot), desktop=name)
        self._pve.run("post", vm.path + "/snapshot", "snapshot %s as %s" % (name, snapshot), vm, snapname=snapshot,
                      vmstate=1 if (with_memory and facts.is_active) else None, description=description or None)

    def snapshot_revert(self, name, snapshot):
        pc.check_snapshot_name(snapshot)
        vm = self._vm(name)
        self._require_snapshot(vm, snapshot)
        self._pve.run("post", "%s/snapshot/%s/rollback" % (vm.path, snapshot), "roll %s back to %s" % (name, snapshot),
                      vm)

    def snapshot_delete(self, name, snapshot):
        pc.check_snapshot_name(snapshot)
        vm = self._vm(name)
        self._require_snapshot(vm, snapshot)
        self._pve.run("delete", "%s/snapshot/%s" % (vm.path, snapshot), "delete snapshot %s of %s" % (snapshot, name), vm)

    def _require_snapshot(self, vm, snapshot):
        snaps = self._pve.get(vm.path + "/snapshot", "list the snapshots of %s" % vm.name) or []
        if not any(s.get("name") == snapshot for s in snaps):
            raise DesktopNotFound("%s has no snapshot named %s." % (vm.name, snapshot), desktop=vm.name,
                                  snapshot=snapshot)


def _utilisation_of(first, second, interval):
    """``status/current`` samples -> the neutral utilisation dict."""
    # An unreadable CPU reading stays None: read as 0 % it would walk a desktop down to its minimum.
    cpus = [s.get("cpu") for s in (first, second)]
    cpus = None if any(c is None for c in cpus) else [float(c) for c in cpus]
    balloon = second.get("ballooninfo") or {}
    mib = 1024.0 * 1024.0
    memory = {}
    if balloon.get("actual"):
        memory["actual_mib"] = int(balloon["actual"] / mib)
    elif second.get("maxmem"):
        memory["actual_mib"] = int(second["maxmem"] / mib)
    if balloon.get("free_mem") is not None:
        memory["unused_mib"] = int(balloon["free_mem"] / mib)
    if balloon.get("total_mem") is not None:
        memory["available_mib"] = int(balloon["total_mem"] / mib)
    if second.get("memhost") is not None or second.get("mem") is not None:
        memory["rss_mib"] = int((second.get("memhost") or second.get("mem") or 0) / mib)
    disks, nets = {}, {}
    blockstat = second.get("blockstat") or {}
    if blockstat:
        for i, key in enumerate(sorted(blockstat, key=pc.key_sort)):
            stat = blockstat[key]
            disks["disk%d" % i] = {"rd_bytes": stat.get("rd_bytes", 0), "wr_bytes": stat.get("wr_bytes", 0),
                                   "rd_req": stat.get("rd_operations", 0), "wr_req": stat.get("wr_operations", 0)}
    else:
        disks["total"] = {"rd_bytes": second.get("diskread", 0), "wr_bytes": second.get("diskwrite", 0)}
    nics = second.get("nics") or {}
    # PVE counts from the host's tap device: netin = sent to the guest (guest rx), netout = sent by the guest.
    if nics:
        for i, key in enumerate(sorted(nics)):
            nets["net%d" % i] = {"rx_bytes": nics[key].get("netin", 0), "tx_bytes": nics[key].get("netout", 0)}
    else:
        nets["total"] = {"rx_bytes": second.get("netin", 0), "tx_bytes": second.get("netout", 0)}
    return {
        "cpu_percent": None if cpus is None else round(100.0 * sum(cpus) / len(cpus), 2),
        "online_vcpus": second.get("cpus"),
        "memory": memory,
        "disks": disks,
        "nets": nets,
        "interval": interval,
        "sampled_at": _now_iso(),
    }
