# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the Proxmox VE backend (HTTPS API through proxmoxer).

What a shadow is on Proxmox VE: a linked clone (``full=0``) of a template VM, defined at full size (``cores`` x
``sockets`` = max vCPUs, ``memory`` = max MiB) and running at shadow size (``vcpus``, ``balloon``), with ``numa=1`` and
``hotplug=network,disk,usb,cpu,memory``, tagged ``shadowdesk`` + ``sd-user-<user>`` and with JSON metadata on a
``shadowdesk-meta:`` line of its description. The pure config <-> model mapping is in ``_pve_config``.

Decisions documented here (see also docs):
- ``remove`` needs ``remove_storage=true``: Proxmox VE deletes a VM's own disks with the VM (qemu-server
  ``destroy_vm`` removes every owned volume, ``unused[n]`` included), so a VM cannot be removed while its disk is
  kept. Without ``remove_storage`` we refuse (Conflict) instead of deleting the user's data.
- ``discard_saved_state`` deletes the hibernation image with ``PUT config delete=vmstate`` (qemu-server then also
  drops the ``suspended`` lock and ``runningmachine``/``runningcpu``). ``status/stop`` would not do it: ``vm_stop``
  returns at once for a VM without a QEMU process, so the image and the lock would stay.
- ``stop`` on a paused VM without ``force`` resumes it first: qemu-server refuses ``shutdown`` of a paused VM
  ("VM is paused - cannot shutdown").
- Transient locks (backup, clone, migrate, snapshot, ...) are waited for with bounded back-off (option
  ``lock_timeout``, default ``api_timeout``); the ``suspended`` lock of a hibernated VM is not transient.
- Every task (UPID) is waited for until ``api_timeout`` (``task_timeout`` overrides it) and must end ``OK``
  (or ``WARNINGS: n``).
"""

from __future__ import annotations

import datetime
import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_activity as _activity
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_config as pc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_network
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.base import DesktopBackend, option_seconds
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    BackendUnavailable, Conflict, DesktopNotFound, InvalidInput, OperationRefused, ShadowDeskError,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    STATE_PAUSED, STATE_RUNNING, STATE_SAVED, STATE_SHUTOFF,
)

TASK_LOG_LINES = 8


class _Locked(Exception):
    """Internal: the VM holds a transient lock; the operation may be retried."""

    def __init__(self, lock, message):
        super().__init__(message)
        self.lock = lock
        self.message = message


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
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ProxmoxBackend(DesktopBackend):
    name = "proxmox"

    def __init__(self, options):
        super().__init__(options)
        self._api = None
        self._configs = {}  # vmid -> running config seen by the last get() (for classify)
        self._located = {}  # name -> cluster/resources entries, read once by locate() for a batch
        self.api_timeout = int(option_seconds(options, "api_timeout", 60))
        self.task_timeout = option_seconds(options, "task_timeout", self.api_timeout)
        self.lock_timeout = option_seconds(options, "lock_timeout", self.api_timeout)
        self.poll_interval = option_seconds(options, "poll_interval", 0.2)

    # -- connection ---------------------------------------------------------------------------------------------
    @property
    def _where(self):
        return "https://%s:%s" % (self.options.get("api_host"), self.options.get("api_port") or 8006)

    def _connect(self):
        if self._api is not None:
            return self._api
        opts = self.options
        _deps.require("requests")
        proxmoxer = _deps.require("proxmoxer")
        if not opts.get("api_host") or not opts.get("api_user"):
            raise InvalidInput("The proxmox backend needs api_host and api_user.")
        verify = bool(opts.get("validate_certs", True))
        if verify and opts.get("ca_path"):
            verify = opts["ca_path"]
        kwargs = dict(host=opts["api_host"], port=int(opts.get("api_port") or 8006), user=opts["api_user"],
                      verify_ssl=verify, timeout=self.api_timeout, backend="https", service="PVE")
        if opts.get("api_token_id"):
            token = opts["api_token_id"]
            if "!" in token:  # the full form user@realm!name
                kwargs["user"], token = token.split("!", 1)
            if not opts.get("api_token_secret"):
                raise InvalidInput("api_token_id is set but api_token_secret is missing.")
            kwargs.update(token_name=token, token_value=opts["api_token_secret"])
        elif opts.get("api_password"):
            kwargs["password"] = opts["api_password"]
        else:
            raise InvalidInput("The proxmox backend needs api_token_id + api_token_secret or api_password.")
        try:
            self._api = proxmoxer.ProxmoxAPI(**kwargs)
        # Only the client call is inside the try: whatever proxmoxer/requests raise becomes a ShadowDeskError naming
        # the call (_map_exception; unknown types -> OperationRefused), so no client traceback reaches the user.
        except Exception as exc:  # pylint: disable=broad-except
            raise self._map_exception(exc, "log in") from None
        return self._api

    def close(self):
        api, self._api = self._api, None
        if api is not None:
            session = getattr(api, "_store", {}).get("session")
            if session is not None:
                requests = _deps.require("requests")  # loaded by _connect already
                try:
                    session.close()
                except (OSError, requests.exceptions.RequestException):
                    pass  # best effort: the connection pool is dropped anyway

    # -- error mapping ------------------------------------------------------------------------------------------
    def _map_exception(self, exc, what):
        """Any exception of requests/proxmoxer -> a ShadowDeskError (never a traceback)."""
        if isinstance(exc, ShadowDeskError):
            return exc
        proxmoxer = _deps.require("proxmoxer")
        requests = _deps.require("requests")
        core = proxmoxer.core
        if isinstance(exc, core.ResourceException):
            return self._map_resource_exception(exc, what)
        if isinstance(exc, core.AuthenticationError):
            return BackendUnavailable(
                "Proxmox VE at %s refused the login of %s (wrong user or password?): %s"
                % (self._where, self.options.get("api_user"), exc), host=self._where)
        if isinstance(exc, requests.exceptions.SSLError):
            text = str(exc)
            hint = ("the server certificate could not be verified (certificate verify failed): give its CA with "
                    "ca_path, or set validate_certs=false only on a trusted lab network"
                    if "verify failed" in text or "CERTIFICATE" in text.upper()
                    else "check ca_path / validate_certs")
            return BackendUnavailable("TLS connection to Proxmox VE at %s failed: %s (%s)." % (self._where, hint, text),
                                      host=self._where)
        if isinstance(exc, requests.exceptions.Timeout):
            return BackendUnavailable("Proxmox VE at %s did not answer within %ss while trying to %s."
                                      % (self._where, self.api_timeout, what), host=self._where)
        if isinstance(exc, requests.exceptions.RequestException):
            return BackendUnavailable("Cannot reach Proxmox VE at %s to %s: %s" % (self._where, what, exc),
                                      host=self._where)
        if isinstance(exc, NotImplementedError):  # proxmoxer's config_failure
            return InvalidInput("Proxmox VE connection options are incomplete: %s" % exc)
        return OperationRefused("Unexpected error from Proxmox VE while trying to %s: %s: %s"
                                % (what, type(exc).__name__, exc))

    def _map_resource_exception(self, exc, what):
        status = getattr(exc, "status_code", 0) or 0
        reason = (getattr(exc, "content", "") or getattr(exc, "status_message", "") or "").strip()
        errors = getattr(exc, "errors", None)
        details = {"status_code": status, "reason": reason}
        if isinstance(errors, dict) and errors:
            errors = {k: (v.strip() if isinstance(v, str) else v) for k, v in errors.items()}
            details["errors"] = errors
            detail_text = "; ".join("%s: %s" % (k, v) for k, v in sorted(errors.items()))
            return OperationRefused("Proxmox VE rejected the request to %s (HTTP %s %s): %s"
                                    % (what, status, reason, detail_text), **details)
        if errors:
            details["errors"] = errors if not isinstance(errors, bytes) else errors.decode("utf-8", "replace")
        if status == 401:
            return BackendUnavailable(
                "Proxmox VE at %s rejected the credentials of %s (HTTP 401 %s): check api_user, api_token_id and "
                "api_token_secret (or api_password)." % (self._where, self.options.get("api_user"), reason),
                **details)
        if status == 403:
            return OperationRefused(
                "Proxmox VE denied permission to %s (HTTP 403 %s): give the API user/token the needed privilege "
                "(with privilege separation the token needs its own ACL)." % (what, reason), **details)
        if status in (595, 596, 597, 598, 599, 502, 503):
            return BackendUnavailable("Proxmox VE at %s cannot %s (HTTP %s %s)." % (self._where, what, status, reason),
                                      **details)
        if "does not exist" in reason and "onfiguration file" in reason:
            return DesktopNotFound("Proxmox VE: %s (while trying to %s)." % (reason, what), **details)
        lock = pc.locked_by(reason)
        if lock:
            return _Locked(lock, reason)
        return OperationRefused("Proxmox VE refused to %s (HTTP %s): %s" % (what, status, reason or exc), **details)

    # -- HTTP ---------------------------------------------------------------------------------------------------
    def _request(self, method, path, what, **params):
        api = self._connect()
        params = {k: v for k, v in params.items() if v is not None}
        try:
            return getattr(api(path), method)(**params)
        except Exception as exc:  # pylint: disable=broad-except  # client call only, mapped as in _connect
            raise self._map_exception(exc, what) from None

    def _get(self, path, what, **params):
        try:
            return self._request("get", path, what, **params)
        except _Locked as locked:
            raise OperationRefused("Cannot %s: %s" % (what, locked.message), lock=locked.lock) from None

    # -- tasks --------------------------------------------------------------------------------------------------
    def _wait_task(self, upid, what):
        """Poll a UPID until it stops; return normally on OK/WARNINGS, raise otherwise."""
        if not upid or not isinstance(upid, str) or not upid.startswith("UPID:"):
            return  # synchronous answer (e.g. POST config finished within background_delay)
        node = upid.split(":")[1]
        deadline = time.monotonic() + self.task_timeout
        delay = self.poll_interval
        while True:
            status = self._get("nodes/%s/tasks/%s/status" % (node, upid), "read the task status of " + what)
            if status.get("status") == "stopped":
                break
            if time.monotonic() >= deadline:
                raise OperationRefused("The Proxmox VE task to %s is still running after %ss (UPID %s); it was not "
                                       "cancelled, check the task log." % (what, int(self.task_timeout), upid),
                                       upid=upid)
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        exitstatus = status.get("exitstatus") or ""
        if exitstatus == "OK" or exitstatus.startswith("WARNINGS"):
            return
        lock = pc.locked_by(exitstatus)
        if lock:
            raise _Locked(lock, exitstatus)
        lines = self._task_log_tail(node, upid, what)
        raise OperationRefused("The Proxmox VE task to %s failed: %s%s"
                               % (what, exitstatus, (" -- task log: " + " | ".join(lines)) if lines else ""),
                               upid=upid, exitstatus=exitstatus, task_log=lines)

    def _task_log_tail(self, node, upid, what):
        try:
            log = self._get("nodes/%s/tasks/%s/log" % (node, upid), "read the task log of " + what, limit=1000)
        except ShadowDeskError:
            return []
        lines = [str(item.get("t", "")) for item in sorted(log or [], key=lambda i: i.get("n", 0))]
        lines = [line for line in lines if line and line != "no content"]
        return lines[-TASK_LOG_LINES:]

    def _run(self, method, path, what, vm=None, **params):
        """One mutating call: request + wait for its task, retried with back-off while the VM holds a transient
        lock (bounded by lock_timeout)."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.25
        while True:
            try:
                result = self._request(method, path, what, **params)
                self._wait_task(result, what)
                return result
            except _Locked as locked:
                if locked.lock not in pc.TRANSIENT_LOCKS:
                    raise Conflict("Cannot %s: %s (lock '%s' is not a transient lock)."
                                   % (what, locked.message, locked.lock), lock=locked.lock) from None
                if time.monotonic() + delay > deadline:
                    raise OperationRefused(
                        "Cannot %s: the VM is still locked (%s) after waiting %ss: %s. Wait for the %s job to "
                        "finish or remove a stale lock with 'qm unlock %s'."
                        % (what, locked.lock, int(self.lock_timeout), locked.message, locked.lock,
                           vm.vmid if vm else "<vmid>"), lock=locked.lock) from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- lookup -------------------------------------------------------------------------------------------------
    def _resources(self):
        items = self._get("cluster/resources", "list the cluster's VMs", type="vm") or []
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
        return self._get(vm.path + "/config", "read the configuration of %s" % vm.name, current=1) or {}

    def _status(self, vm):
        return self._get(vm.path + "/status/current", "read the status of %s" % vm.name) or {}

    def _facts(self, vm):
        current = self._current(vm)
        pending = self._get(vm.path + "/pending", "read the pending changes of %s" % vm.name) or []
        status = self._status(vm)
        snaps = self._get(vm.path + "/snapshot", "list the snapshots of %s" % vm.name) or []
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
        tasks = self._get("nodes/%s/tasks" % vm.node, "list the running tasks of %s" % name,
                          source="active", vmid=vm.vmid, limit=500) or []
        result["consoles"] = _activity.consoles_of(tasks)
        if not _activity.agent_enabled(current):
            result["agent"] = "not configured"
        elif state == STATE_PAUSED:
            result["agent"] = "no answer"
        else:
            try:
                answer = self._get(vm.path + "/agent/get-users", "ask the guest agent of %s for logged-in users" % name)
                result["agent"], result["agent_users"] = "answered", _activity.agent_users_of(answer)
            except OperationRefused:  # agent not running in the guest (PVE answers 500): no signal
                result["agent"] = "no answer"
        return result

    def utilisation(self, name, interval=1.0):
        vm = self._vm(name)
        first = self._status(vm)
        if interval and first.get("status") == "running":
            time.sleep(float(interval))
            second = self._status(vm)
        else:
            second = first
        return _utilisation_of(first, second, float(interval or 0))

    def host_capacity(self, node=None):
        node = node or self.options.get("node")
        if not node:
            return None
        status = self._get("nodes/%s/status" % node, "read the status of node %s" % node) or {}
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
        status = self._get("nodes/%s/status" % target, "read the status of node %s" % target) or {}
        node_mib = int((status.get("memory") or {}).get("total") or 0) // pc.MIB
        if node_mib and spec.max_memory_mib > node_mib:
            # PVE stores any size and fails only at the start; a desktop larger than its node is a typo or a bug.
            raise InvalidInput("max_memory_mib=%s is more than node %s has (%s MiB)"
                               % (spec.max_memory_mib, target, node_mib), node=target)
        return tvm, target

    def create(self, spec):
        tvm, target = self._template_for(spec)
        source = tvm.vmid
        newid = int(self._get("cluster/nextid", "allocate a VM ID"))
        self._run("post", tvm.path + "/clone", "clone template %s into %s" % (source, spec.name), tvm,
                  newid=newid, name=spec.name, full=0, target=target if target != tvm.node else None,
                  description=pc.format_description({"user": spec.user, "template": str(source), "state": "creating"}))
        vm = _Vm(newid, target, spec.name)
        try:
            clone_conf = self._current(vm)
            params = pc.shadow_config(spec, clone_conf, _now_iso())
            self._run("post", vm.path + "/config", "size and tag the new shadow %s" % spec.name, vm, **params)
        except ShadowDeskError as exc:
            self._cleanup_new_clone(vm, exc)
            raise
        return self._facts(vm)

    def _cleanup_new_clone(self, vm, exc):
        """The linked clone was made a moment ago and holds no user data yet: remove it so a retry starts clean."""
        try:
            self._run("delete", vm.path, "remove the half-created shadow %s" % vm.name, vm, purge=1)
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
        self._run("post", vm.path + "/status/start", "start %s" % name, vm)

    def pause(self, name):
        vm = self._vm(name)
        state = self._state(vm)
        if state == STATE_PAUSED:
            return
        if state != STATE_RUNNING:
            raise Conflict("Cannot pause %s: it is %s, not running." % (name, state), desktop=name, state=state)
        self._run("post", vm.path + "/status/suspend", "pause %s" % name, vm)

    def resume(self, name):
        vm = self._vm(name)
        state = self._state(vm)
        if state == STATE_RUNNING:
            return
        if state != STATE_PAUSED:
            raise Conflict("Cannot resume %s: it is %s, not paused (use start)." % (name, state),
                           desktop=name, state=state)
        self._run("post", vm.path + "/status/resume", "resume %s" % name, vm)

    def save(self, name):
        vm = self._vm(name)
        state = self._state(vm)
        if state == STATE_SAVED:
            return
        if state not in (STATE_RUNNING, STATE_PAUSED):
            raise Conflict("Cannot save %s: it is %s; only a running or paused VM has RAM to save."
                           % (name, state), desktop=name, state=state)
        self._run("post", vm.path + "/status/suspend", "hibernate %s" % name, vm, todisk=1)

    def stop(self, name, force=False):
        vm = self._vm(name)
        state = self._state(vm)
        if state in (STATE_SHUTOFF, STATE_SAVED):
            return  # nothing runs; a saved image is only dropped by discard_saved_state
        if force:
            self._run("post", vm.path + "/status/stop", "power off %s" % name, vm)
            return
        if state == STATE_PAUSED:
            self._run("post", vm.path + "/status/resume", "resume %s before shutting it down" % name, vm)
        self._run("post", vm.path + "/status/shutdown", "shut down %s" % name, vm,
                  timeout=max(1, int(self.task_timeout) - 5))

    def discard_saved_state(self, name):
        vm = self._vm(name)
        facts = self._facts(vm)
        if not facts.has_saved_state:
            return
        if facts.is_active:
            raise Conflict("%s is running; it has no hibernation image to discard." % name, desktop=name)
        self._run("put", vm.path + "/config", "discard the saved state of %s" % name, vm, delete="vmstate")

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
        self._run("delete", vm.path, "remove %s" % name, vm, purge=1, **{"destroy-unreferenced-disks": 1})

    def migrate(self, name, node):
        vm = self._vm(name)
        if vm.node == node:
            return
        facts = self._facts(vm)
        self._run("post", vm.path + "/migrate", "move %s from %s to %s" % (name, vm.node, node), vm,
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
            tasks = self._get("nodes/%s/tasks" % node, "list the console tasks on %s" % node, source="active",
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
        pending_items = self._get(vm.path + "/pending", "read the pending changes of %s" % facts.name) or []
        state = pc.power_state(self._status(vm), current)
        if state == STATE_SAVED:
            raise pc.hibernated_conflict(facts.name)
        nxt = pc.split_pending(current, pending_items)[0]
        params, delete, touched = pc.change_params(nxt, changes)
        if delete:
            params["delete"] = ",".join(delete)
        what = "change the resources of %s" % facts.name
        try:
            self._run("post", vm.path + "/config", what, vm, **params)
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
            items = self._get(vm.path + "/pending", "read the pending changes of %s" % vm.name) or []
        except ShadowDeskError:
            if strict:
                raise
            return {}
        return pc.split_pending({}, items)[1]

    # -- network shadow (_pve_network) ---------------------------------------------------------------------------
    def network_shadow(self):
        """net1 on the shadow bridge, cluster IP sets and VM rules of this connection's desktops."""
        return _pve_network.PveNetworkShadow(self, self._get, self._run)

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
        self._run("post", vm.path + "/snapshot", "snapshot %s as %s" % (name, snapshot), vm, snapname=snapshot,
                  vmstate=1 if (with_memory and facts.is_active) else None, description=description or None)

    def snapshot_revert(self, name, snapshot):
        pc.check_snapshot_name(snapshot)
        vm = self._vm(name)
        self._require_snapshot(vm, snapshot)
        self._run("post", "%s/snapshot/%s/rollback" % (vm.path, snapshot), "roll %s back to %s" % (name, snapshot),
                  vm)

    def snapshot_delete(self, name, snapshot):
        pc.check_snapshot_name(snapshot)
        vm = self._vm(name)
        self._require_snapshot(vm, snapshot)
        self._run("delete", "%s/snapshot/%s" % (vm.path, snapshot), "delete snapshot %s of %s" % (snapshot, name), vm)

    def _require_snapshot(self, vm, snapshot):
        snaps = self._get(vm.path + "/snapshot", "list the snapshots of %s" % vm.name) or []
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
