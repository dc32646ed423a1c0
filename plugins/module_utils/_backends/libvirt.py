# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the libvirt backend (``backend: libvirt``). The only file that talks to libvirt-python.

Options read from the module parameters: ``uri`` (default ``qemu:///system``), ``shutdown_timeout`` (seconds a
graceful ``stop`` waits for the guest, default 20), ``storage`` (overlay directory when ``ShadowSpec.storage`` is
not given).

Decisions taken here (see also ``_libvirt_xml`` for the XML mapping):
- Every libvirt call goes through ``_call``, which turns ``libvirtError`` into ``_errors`` (no libvirtError
  escapes): no domain -> DesktopNotFound, connection lost -> BackendUnavailable, wrong state -> Conflict, anything
  the hypervisor or guest refuses -> OperationRefused with libvirt's own message.
- Resources on a running/paused desktop are applied with AFFECT_LIVE|AFFECT_CONFIG so a restart keeps them;
  on a shut-off one to the definition (``config``). A *saved* desktop's RAM image cannot be changed: changes go to
  the definition only and are reported ``pending`` (they reach the guest at its next cold boot, or when the
  resources are applied again after the restore); the saved state is never discarded to apply them.
- GPUs are never hot-plugged: written to the definition, ``pending`` while the guest runs.
- ``stop(force=False)`` asks for an ACPI shutdown, waits ``shutdown_timeout`` s, then powers off and says so in
  its return value (a guest without an ACPI daemon never shuts down on its own). Disks are kept either way.
- ``save`` uses managed save with VIR_DOMAIN_SAVE_RUNNING so ``start`` always ends running, even when the desktop
  was paused when saved (lifecycle ``saved -> paused`` is start + pause).
- Snapshots are internal qcow2 snapshots: with RAM when the desktop is running/paused, disk-only when shut off.
  A disk-only snapshot of a running desktop would be an external snapshot (new overlay files that this libvirt
  cannot revert to), so it is refused with InvalidInput rather than silently taking another kind.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import subprocess
import threading
import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_shadow_nic as shadow_nic
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_activity as _activity
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_xml as lxml
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_domain import (
    BALLOON_NAMESPACE, MACHINE_DEFAULTS, render_domain_xml,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.base import DesktopBackend, option_seconds
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    BackendUnavailable, Conflict, DesktopNotFound, InvalidInput, OperationRefused, ShadowDeskError,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    APPLIED_CONFIG, APPLIED_LIVE, APPLIED_PENDING, STATE_PAUSED, STATE_RUNNING, STATE_SAVED, STATE_SHUTOFF,
    DesktopFacts, ResourceChange,
)

DEFAULT_URI = "qemu:///system"
DEFAULT_STORAGE = "/var/lib/libvirt/images/shadowdesk/desktops"
DEFAULT_SHUTDOWN_TIMEOUT = 20.0
KEEPALIVE_MAX_S = 20.0  # a daemon that does not answer for this long is treated as down
KEEPALIVE_COUNT = 3
MIN_RAW_IMAGE_BYTES = 1024 * 1024
CPU_PERIOD_US = 100000  # cgroup period for cpu_limit; 100 ms is the kernel's default
SHADOW_TAG = "shadowdesk"

_SAVED_REASON = ("the desktop's RAM is saved to disk and a saved image cannot be resized: the change goes to the "
                 "definition and reaches the guest at its next cold boot (the saved state is kept)")
# Measured on the container test bed: tc exists, but the kernel lacks sch_sfq (inbound) and act_police (outbound),
# so libvirt's shaping fails live, and a <bandwidth> in the definition even makes the next start fail.
_TC_HINT = (" (libvirt shapes interface bandwidth with tc: htb+sfq for inbound, a police action for outbound; this "
            "host's kernel lacks a module it needs, e.g. sch_sfq or act_police: load them or set the interface's "
            "rate_kib_s to 0)")
_GPU_REASON = "GPUs are never hot-plugged: the definition gets it, the guest at its next cold boot"


def _quiet_errors(_ctx, _err):
    """libvirt prints every error to stderr by default; we report them through _errors instead."""


_EVENT_LOOP = []


def _start_event_loop(lv):
    """libvirt's default event loop in a daemon thread (once per process): keepalive probes need it."""
    if _EVENT_LOOP:
        return
    lv.virEventRegisterDefaultImpl()

    def run():
        while True:
            lv.virEventRunDefaultImpl()

    thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
    thread.start()
    _EVENT_LOOP.append(thread)


class LibvirtBackend(DesktopBackend):
    name = "libvirt"

    def __init__(self, options):
        super().__init__(options or {})
        self._lv = _deps.require("libvirt")
        self._lv.registerErrorHandler(_quiet_errors, None)
        self.uri = self.options.get("uri") or DEFAULT_URI
        self._conn = None

    # -- connection and error mapping ---------------------------------------------------------------------------
    @property
    def conn(self):
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _answer_within(self):
        """Seconds a libvirtd that stopped answering is waited for: api_timeout, at most KEEPALIVE_MAX_S."""
        return min(option_seconds(self.options, "api_timeout", KEEPALIVE_MAX_S), KEEPALIVE_MAX_S)

    def _open(self):
        """Open the connection in a helper thread bounded by ``_answer_within`` (a frozen libvirtd accepts the
        socket but never answers the open call), then keep it alive with keepalive probes so that any later call
        to a frozen or dead daemon fails instead of hanging (libvirt closes the connection after ``count``
        unanswered probes ``interval`` s apart; that needs a running event loop, started once per process)."""
        lv, bound = self._lv, self._answer_within()
        _start_event_loop(lv)
        outcome = {}

        def opener():
            try:
                outcome["conn"] = lv.open(self.uri)
            except lv.libvirtError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=opener, name="libvirt-open", daemon=True)
        thread.start()
        thread.join(bound)
        if thread.is_alive():
            raise BackendUnavailable("libvirt at %s did not answer within %g s (is libvirtd frozen or overloaded?)"
                                     % (self.uri, bound), uri=self.uri)
        if "error" in outcome:
            raise BackendUnavailable("Cannot connect to libvirt at %s: %s" % (self.uri, _msg(outcome["error"])),
                                     uri=self.uri)
        conn = outcome.get("conn")
        if conn is None:  # very old bindings return None instead of raising
            raise BackendUnavailable("Cannot connect to libvirt at %s" % self.uri, uri=self.uri)
        interval = max(1, int(bound // (KEEPALIVE_COUNT + 1)))
        with contextlib.suppress(lv.libvirtError):  # local drivers (test:///) have no keepalive: nothing to bound
            conn.setKeepAlive(interval, KEEPALIVE_COUNT)
        return conn

    def close(self):
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _call(self, what, name=None, refused=OperationRefused):
        """Run libvirt calls, mapping libvirtError to our errors. ``what`` completes 'Cannot ...'."""
        try:
            yield
        except self._lv.libvirtError as exc:
            raise self._mapped(exc, what, name, refused) from None

    def _connection_lost(self, exc):
        lv = self._lv
        return exc.get_error_code() in (lv.VIR_ERR_NO_CONNECT, lv.VIR_ERR_INVALID_CONN, lv.VIR_ERR_AUTH_FAILED) or (
            exc.get_error_domain() == lv.VIR_FROM_RPC)  # incl. "connection closed due to keepalive timeout"

    def _mapped(self, exc, what, name=None, refused=OperationRefused):
        """The ShadowDeskError for a libvirtError (see the module docstring)."""
        lv = self._lv
        code = exc.get_error_code()
        text = "Cannot %s%s: %s" % (what, " (desktop %s)" % name if name else "", _msg(exc))
        details = {"libvirt_error_code": code, "uri": self.uri}
        if code == lv.VIR_ERR_NO_DOMAIN:
            return DesktopNotFound("Desktop %s does not exist on %s" % (name, self.uri), **details)
        if self._connection_lost(exc):
            self._conn = None
            return BackendUnavailable("Lost the connection to libvirt at %s while trying to %s: %s"
                                      % (self.uri, what, _msg(exc)), **details)
        if code == lv.VIR_ERR_OPERATION_INVALID:
            return Conflict(text, **details)
        if "tc qdisc" in text or "tc filter" in text or "TC action" in text:
            text += _TC_HINT
        return refused(text, **details)

    def _domain(self, name):
        with self._call("look up the desktop", name):
            return self.conn.lookupByName(name)

    def _find(self, name):
        """The domain or None."""
        try:
            return self._domain(name)
        except DesktopNotFound:
            return None

    # -- network shadow (secondary NIC on its own network) -------------------------------------------------------
    def shadow_nic(self, name):
        return shadow_nic.state(self, name)

    def ensure_shadow_network(self, network, bridge, check_mode=False):
        return shadow_nic.ensure_network(self, network, bridge, check_mode)

    def attach_shadow_nic(self, name, network):
        return shadow_nic.attach(self, name, network)

    def detach_shadow_nic(self, name, network):
        return shadow_nic.detach(self, name, network)

    # -- facts --------------------------------------------------------------------------------------------------
    def get(self, name):
        dom = self._find(name)
        return self._facts(dom) if dom is not None else None

    def list(self, user=None):
        with self._call("list domains"):
            domains = self.conn.listAllDomains(0)
        result = []
        for dom in domains:
            try:
                facts = self._facts(dom)
            except DesktopNotFound:  # undefined between the listing and the lookup
                continue
            if SHADOW_TAG in facts.tags and (user is None or facts.user == user):
                result.append(facts)
        return sorted(result, key=lambda f: f.name)

    def _power_state(self, dom):
        """(neutral state, note, lost session) from libvirt's state, its reason and the managed-save image.

        A managed-save image counts as saved state only when it is complete (docs/decisions.md D16): libvirt
        writes the header magic ``LibvirtQemudPart`` first and ``LibvirtQemudSave`` when QEMU has finished, and
        ``managedSaveGetXMLDesc`` reads that header, so it fails for an image whose save was interrupted. Such an
        image is never restored (libvirt ignores it and cold-boots), so it must never be reported as a session."""
        lv = self._lv
        with self._call("read the state", dom.name()):
            state, reason = dom.state()[:2]
            image = bool(dom.hasManagedSaveImage(0))
        if state in (lv.VIR_DOMAIN_RUNNING, lv.VIR_DOMAIN_BLOCKED, lv.VIR_DOMAIN_SHUTDOWN):
            notes = ["shutting down"] if state == lv.VIR_DOMAIN_SHUTDOWN else []
            if image:  # a running guest's image is left over from a save that was cancelled (the guest went on)
                notes.append("an incomplete saved image of a cancelled save is left over (it is ignored)")
            return STATE_RUNNING, "; ".join(notes), ""
        if state in (lv.VIR_DOMAIN_PAUSED, lv.VIR_DOMAIN_PMSUSPENDED):
            return STATE_PAUSED, "", ""
        if image:
            if self._image_complete(dom):
                return STATE_SAVED, "", ""
            lost = ("its saved image is incomplete (the save was interrupted): the session it should hold is lost "
                    "and the next start cold-boots")
            return STATE_SHUTOFF, "the saved image is incomplete", lost
        crashed = state == lv.VIR_DOMAIN_SHUTOFF and reason == lv.VIR_DOMAIN_SHUTOFF_CRASHED
        if crashed or state == lv.VIR_DOMAIN_CRASHED:
            lost = ("its QEMU process ended without a shutdown (crashed or killed): the in-memory session is lost "
                    "and the next start cold-boots")
            return STATE_SHUTOFF, "the guest crashed", lost
        return STATE_SHUTOFF, "", ""

    def _xml(self, dom, inactive):
        flags = self._lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        with self._call("read the definition", dom.name()):
            return lxml.parse(dom.XMLDesc(flags))

    def _saved_xml(self, dom):
        """The domain XML inside the managed-save image (what a restore brings back), or None."""
        try:
            return lxml.parse(self._read_saved_xml(dom))
        except self._lv.libvirtError:
            return None

    def _read_saved_xml(self, dom):
        try:
            return dom.managedSaveGetXMLDesc(0)
        except self._lv.libvirtError as exc:
            if self._connection_lost(exc):
                raise self._mapped(exc, "read the saved image", dom.name()) from None
            raise

    def _image_complete(self, dom):
        """Whether the managed-save image can be restored: libvirt reads its header for managedSaveGetXMLDesc and
        refuses an image whose save never finished. A driver without that call (test:///) is trusted."""
        try:
            self._read_saved_xml(dom)
        except self._lv.libvirtError as exc:
            return exc.get_error_code() == self._lv.VIR_ERR_NO_SUPPORT
        return True

    def _facts(self, dom):
        state, note, lost = self._power_state(dom)
        config_root = self._xml(dom, inactive=True)
        meta = lxml.metadata(config_root)
        if state in (STATE_RUNNING, STATE_PAUSED):
            live_root = self._xml(dom, inactive=False)
        elif state == STATE_SAVED:
            live_root = self._saved_xml(dom) or config_root
        else:
            live_root = config_root
        config = lxml.resources(config_root)
        live = lxml.resources(live_root)
        if state in (STATE_RUNNING, STATE_PAUSED):
            with self._call("count the online vCPUs", dom.name()):
                live.vcpus = dom.vcpusFlags(self._lv.VIR_DOMAIN_VCPU_LIVE)
        pending = lxml.pending(live, config) if live_root is not config_root else {}
        if note:
            pending["state"] = note
        _online, max_vcpus = lxml.vcpus(config_root)
        with self._call("read the facts", dom.name()):
            uuid, node = dom.UUIDString(), self.conn.getHostname()
            snapshots = self._snapshots(dom)
        return DesktopFacts(
            name=dom.name(), backend=self.name, state=state, user=(meta or {}).get("user") or None,
            backend_id=uuid, node=node, max_vcpus=max_vcpus,
            max_memory_mib=lxml.memory_mib(config_root.find("memory")) or 0,
            live=live, config=config, pending=pending, has_saved_state=state == STATE_SAVED, lost_session=lost,
            snapshots=snapshots, disks=[info for info, _limit in lxml.disks(config_root, meta)],
            interfaces=[i["key"] for i in lxml.interfaces(config_root)],
            tags=[SHADOW_TAG] if meta is not None else [],
        )

    def _snapshots(self, dom):
        result = [lxml.snapshot(snap.getXMLDesc(0)) for snap in dom.listAllSnapshots(0)]
        return sorted(result, key=lambda s: (s.created or "", s.name))

    def utilisation(self, name, interval=1.0):
        dom = self._domain(name)
        sampled_at = _now()
        if not dom.isActive():
            return {"cpu_percent": 0.0, "memory": {}, "disks": {}, "nets": {}, "sampled_at": sampled_at,
                    "state": self._power_state(dom)[0]}
        with self._call("measure utilisation", name):
            online = dom.vcpusFlags(self._lv.VIR_DOMAIN_VCPU_LIVE) or 1
            cpu0, wall0 = self._guest_cpu_ns(dom), time.monotonic()
            time.sleep(max(float(interval), 0.1))
            cpu1, wall1 = self._guest_cpu_ns(dom), time.monotonic()
            sampled_at = _now()
            root = lxml.parse(dom.XMLDesc(0))
            memory = _memory_stats(dom.memoryStats())
            disks = {info.key: _block_stats(dom.blockStats(info.target)) for info, _l in lxml.disks(root)}
            nets = {i["key"]: _net_stats(dom.interfaceStats(i["target"]))
                    for i in lxml.interfaces(root) if i["target"]}
        cpu_percent = 100.0 * (cpu1 - cpu0) / ((wall1 - wall0) * 1e9 * online)
        return {"cpu_percent": round(min(max(cpu_percent, 0.0), 100.0), 2), "memory": memory, "disks": disks,
                "nets": nets, "sampled_at": sampled_at, "state": STATE_RUNNING, "online_vcpus": online}

    def _guest_cpu_ns(self, dom):
        """CPU time the guest's vCPUs used (ns). The whole QEMU process's time (``info()``) also counts the emulator
        and I/O threads, which under TCG alone can exceed 100 % of one vCPU; use it only where the driver has no
        per-vCPU accounting."""
        try:
            stats = dom.getCPUStats(True)[0]
        except self._lv.libvirtError:
            stats = {}
        if stats.get("vcpu_time"):
            return stats["vcpu_time"]
        return dom.info()[4]

    def host_capacity(self, node=None):
        with self._call("read the host's CPUs and free memory"):
            info = self.conn.getInfo()  # [model, memory MiB, CPUs, MHz, NUMA nodes, sockets, cores, threads]
            free = self.conn.getFreeMemory()
        return {"cpus": float(info[2]), "memory_mib": float(info[1]), "free_memory_mib": free / 1048576.0}

    def activity(self, name):
        dom = self._domain(name)
        state = self._power_state(dom)[0]
        result = {"state": state, "consoles": [], "agent": "desktop not running", "agent_users": []}
        if state not in (STATE_RUNNING, STATE_PAUSED):
            return result
        root = self._xml(dom, inactive=False)
        qemu = _deps.require("libvirt_qemu")
        for kind in _activity.graphics_kinds(root):
            with self._call("list the %s clients" % kind, name):
                answer = qemu.qemuMonitorCommand(dom, _activity.qmp_command(kind), 0)
            result["consoles"] += _activity.consoles_from_qmp(kind, answer)
        connected = _activity.agent_connected(root)
        if connected is None:
            result["agent"] = "not configured"
        elif not connected or state == STATE_PAUSED:
            result["agent"] = "no answer"
        else:
            try:
                with self._call("ask the guest agent for logged-in users", name):
                    info = dom.guestInfo(self._lv.VIR_DOMAIN_GUEST_INFO_USERS, 0)
                result["agent"], result["agent_users"] = "answered", _activity.users_from_guest_info(info)
            except OperationRefused:  # agent busy or gone between the XML read and the call: no signal
                result["agent"] = "no answer"
        return result

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def check_create(self, spec):
        self._creation_plan(spec)

    def _creation_plan(self, spec):
        """Every check of ``create`` that changes nothing; returns (storage dir, overlay path, golden format,
        whether an existing overlay is reused)."""
        _validate_spec(spec)
        if self._find(spec.name) is not None:
            raise Conflict("Desktop %s already exists on %s" % (spec.name, self.uri), desktop=spec.name)
        storage = os.path.realpath(spec.storage or self.options.get("storage") or DEFAULT_STORAGE)
        overlay = os.path.join(storage, "%s.qcow2" % spec.name)
        self._template_context(spec, storage, overlay)  # unknown machine options
        self._check_host_fits(spec)
        golden = os.path.realpath(spec.source)
        if not os.path.isfile(golden):
            raise InvalidInput("Golden image %s does not exist (or is not a file)" % spec.source)
        if golden == overlay:
            raise InvalidInput("The overlay %s would be the golden image itself" % overlay)
        qemu_img = shutil.which("qemu-img")
        if qemu_img is None:
            raise OperationRefused("qemu-img is not installed on %s (package qemu-utils)" % os.uname()[1])
        fmt = _golden_format(_image_info(qemu_img, golden), spec.source)
        reuse = os.path.lexists(overlay)
        if reuse:
            backing = _image_info(qemu_img, overlay).get("full-backing-filename") or ""
            if not backing or os.path.realpath(backing) != golden:
                raise Conflict("%s already exists and is not an overlay of %s; refusing to overwrite it"
                               % (overlay, spec.source), path=overlay)
            self._refuse_if_used(overlay)
        return storage, overlay, fmt, reuse

    def _check_host_fits(self, spec):
        """A desktop whose full size this host cannot give would be defined fine and fail only at a start."""
        with self._call("read the host's size"):
            host_mib = self.conn.getInfo()[1]
        if spec.max_memory_mib > host_mib:
            raise InvalidInput("max_memory_mib=%s is more than this host has (%s MiB)"
                               % (spec.max_memory_mib, host_mib), host_memory_mib=host_mib)
        domain_type = (spec.machine or {}).get("domain_type") or MACHINE_DEFAULTS["domain_type"]
        try:
            limit = self.conn.getMaxVcpus(domain_type)
        except self._lv.libvirtError:
            limit = 0  # the driver does not say; QEMU checks at start
        if limit and spec.max_vcpus > limit:
            raise InvalidInput("max_vcpus=%s is more than %s domains allow on this host (%s)"
                               % (spec.max_vcpus, domain_type, limit))
        if spec.network:
            try:
                self.conn.networkLookupByName(spec.network)
            except self._lv.libvirtError as exc:
                if exc.get_error_code() == self._lv.VIR_ERR_NO_NETWORK:
                    raise InvalidInput("libvirt network %s does not exist on %s" % (spec.network, self.uri),
                                       network=spec.network) from None
                raise self._mapped(exc, "look up the network %s" % spec.network) from None

    def create(self, spec):
        storage, overlay, fmt, reuse = self._creation_plan(spec)
        if not reuse:
            self._create_overlay(spec, storage, overlay, fmt)
        try:
            xml = render_domain_xml(self._template_context(spec, storage, overlay))
            with self._call("define the desktop", spec.name):
                self.conn.defineXML(xml)
        except ShadowDeskError:
            if not reuse:  # only an overlay we made a moment ago; a reused one holds a user's data
                with contextlib.suppress(OSError):
                    os.unlink(overlay)
            raise
        return self.get(spec.name)

    def _template_context(self, spec, storage, overlay):
        machine = dict(MACHINE_DEFAULTS)
        machine.update({k: v for k, v in (spec.machine or {}).items() if v is not None})
        unknown = set(machine) - set(MACHINE_DEFAULTS)
        if unknown:
            raise InvalidInput("Unknown machine option(s) %s; known: %s"
                               % (", ".join(sorted(unknown)), ", ".join(sorted(MACHINE_DEFAULTS))))
        boot = spec.boot or {}
        serial_dir = machine.pop("serial_log_dir")
        return dict(
            machine, name=spec.name, user=spec.user, source=os.path.realpath(spec.source), overlay=overlay,
            storage=storage, max_memory_mib=spec.max_memory_mib, shadow_memory_mib=spec.shadow_memory_mib,
            max_vcpus=spec.max_vcpus, shadow_vcpus=spec.shadow_vcpus, network=spec.network or "",
            kernel=boot.get("kernel") or "", initrd=boot.get("initrd") or "", cmdline=boot.get("cmdline") or "",
            serial_log=os.path.join(serial_dir, "%s-serial.log" % spec.name),
        )

    @staticmethod
    def _create_overlay(spec, storage, overlay, fmt):
        """The user's qcow2 overlay on the golden image (an existing overlay of the same golden image, kept by an
        earlier ``remove`` without ``remove_storage``, is reused instead)."""
        try:
            os.makedirs(storage, exist_ok=True)
        except OSError as exc:
            raise OperationRefused("Cannot create the storage directory %s: %s" % (storage, exc)) from None
        _run([shutil.which("qemu-img") or "qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b",
              os.path.realpath(spec.source), overlay], "create the overlay %s" % overlay)

    def _refuse_if_used(self, path):
        """Conflict if another defined domain uses ``path`` as a disk."""
        with self._call("list domains"):
            domains = self.conn.listAllDomains(0)
        for dom in domains:
            with contextlib.suppress(DesktopNotFound):
                if any(info.source == path for info, _l in lxml.disks(self._xml(dom, inactive=True))):
                    raise Conflict("%s is a disk of the domain %s; refusing to reuse it" % (path, dom.name()),
                                   path=path)

    def start(self, name):
        dom = self._domain(name)
        state = self._power_state(dom)[0]
        if state == STATE_RUNNING:
            return
        if state == STATE_PAUSED:
            return self.resume(name)
        restoring = state == STATE_SAVED
        what = ("restore the saved state (the saved state is kept; discard it to cold-boot)" if restoring
                else "start the desktop")
        target = None if restoring else lxml.resources(self._xml(dom, inactive=True)).memory_mib
        with self._call(what, name):
            if not restoring and dom.hasManagedSaveImage(0):
                dom.managedSaveRemove(0)  # an incomplete image: libvirt would ignore it and boot anyway
            dom.create()  # restores the managed-save image when there is one (it carries its own target)
            if dom.state()[0] == self._lv.VIR_DOMAIN_PAUSED:  # an image saved paused by another tool
                dom.resume()
        if target:
            self._record_balloon_target(dom, target)

    def _record_balloon_target(self, dom, mib):
        """Remember the balloon target in live-only metadata.

        Why: libvirt's live ``<currentMemory>`` is the guest's *actual* balloon size, which moves towards the target
        over seconds (inflation is progressive; measured: 511 MiB reported just after asking for 384). Facts built
        from it would make a rerun see a difference and resize again (changed=true). The live metadata also travels
        inside a managed-save image, so a restored guest keeps it. Best effort: without it facts show the actual
        size."""
        lv = self._lv
        with contextlib.suppress(lv.libvirtError):
            dom.setMetadata(lv.VIR_DOMAIN_METADATA_ELEMENT, "<balloon target_mib='%d'/>" % int(mib), "sdb",
                            BALLOON_NAMESPACE, lv.VIR_DOMAIN_AFFECT_LIVE)

    def pause(self, name):
        dom = self._domain(name)
        if self._power_state(dom)[0] == STATE_PAUSED:
            return
        with self._call("pause the desktop", name):
            dom.suspend()

    def resume(self, name):
        dom = self._domain(name)
        if self._power_state(dom)[0] == STATE_RUNNING:
            return
        with self._call("resume the desktop", name):
            dom.resume()

    def save(self, name):
        dom = self._domain(name)
        state = self._power_state(dom)[0]
        if state == STATE_SAVED:
            return
        if state == STATE_SHUTOFF:
            raise Conflict("Desktop %s is shut off: there is no RAM to save" % name, desktop=name)
        with self._call("save the desktop's RAM", name):
            dom.managedSave(self._lv.VIR_DOMAIN_SAVE_RUNNING)
        if self._power_state(dom)[0] != STATE_SAVED:
            raise OperationRefused("The save of desktop %s ended without a complete saved image; %s"
                                   % (name, self._facts(dom).lost_session or "it is not saved"), desktop=name)

    def stop(self, name, force=False):
        """Return how the desktop stopped: 'already off', 'shutdown', 'destroyed' or a fallback sentence."""
        dom = self._domain(name)
        if not self._is_active(dom):
            return "already off"
        with self._call("check the saved state", name):
            leftover = bool(dom.hasManagedSaveImage(0))  # an active guest's image is an incomplete leftover
        if force:
            self._destroy(dom)
            outcome = "destroyed"
        else:
            outcome = self._shutdown(dom)
        if leftover:
            # Once off, the leftover would look like saved state; it never held this (running) session.
            with self._call("remove the incomplete saved image", name):
                if dom.hasManagedSaveImage(0):
                    dom.managedSaveRemove(0)
        return outcome

    def shutdown_wait(self):
        """Seconds a graceful stop waits: ``shutdown_timeout`` (default 20), never more than ``api_timeout``."""
        wait = option_seconds(self.options, "shutdown_timeout", DEFAULT_SHUTDOWN_TIMEOUT)
        return min(wait, option_seconds(self.options, "api_timeout", wait))

    def _shutdown(self, dom):
        timeout = self.shutdown_wait()
        with self._call("shut the desktop down", dom.name()):
            if dom.state()[0] == self._lv.VIR_DOMAIN_PAUSED:
                dom.resume()  # a paused guest cannot react to the ACPI power button
            dom.shutdown()
        if self._wait_off(dom, timeout):
            return "shutdown"
        self._destroy(dom)
        return "destroyed: the guest ignored the ACPI shutdown for %g s (its disk is kept)" % timeout

    def _is_active(self, dom):
        with self._call("read the state", dom.name()):
            return bool(dom.isActive())

    def _wait_off(self, dom, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._is_active(dom):
                return True
            time.sleep(0.2)
        return not self._is_active(dom)

    def _destroy(self, dom):
        with self._call("power the desktop off", dom.name()):
            try:
                dom.destroy()
            except self._lv.libvirtError:
                if dom.isActive():
                    raise  # it really did not stop; an 'already off' race is fine

    def discard_saved_state(self, name):
        dom = self._domain(name)
        with self._call("discard the saved state", name):
            if dom.hasManagedSaveImage(0):
                dom.managedSaveRemove(0)

    def remove(self, name, remove_storage=False):
        """Undefine the desktop (with its saved state and snapshot metadata); delete its overlay only when asked
        and only the overlay recorded in our metadata. Returns the deleted paths."""
        dom = self._domain(name)
        if self._is_active(dom):
            raise Conflict("Desktop %s is running; stop it before removing it" % name, desktop=name)
        meta = lxml.metadata(self._xml(dom, inactive=True)) or {}
        overlay = self._removable_overlay(name, meta) if remove_storage else None
        lv = self._lv
        # Internal snapshot data stays inside the overlay (deleted with it, or kept with the user's disk).
        flags = lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        with self._call("undefine the desktop", name):
            dom.undefineFlags(flags)
        if overlay is None:
            return []
        # After the undefine: a failed unlink leaves a stray file, never a domain pointing at a deleted disk.
        try:
            os.unlink(overlay)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise OperationRefused("Desktop %s was removed but its overlay %s could not be deleted: %s"
                                   % (name, overlay, exc), path=overlay) from None
        return [overlay]

    def _removable_overlay(self, name, meta):
        """The overlay path ``remove_storage`` may delete, or None; Conflict when the metadata is unsafe."""
        overlay = meta.get("overlay")
        if not overlay:
            return None  # not created by us: we own no disk of it
        real = os.path.realpath(overlay)
        storage = os.path.realpath(meta.get("storage") or self.options.get("storage") or DEFAULT_STORAGE)
        source = os.path.realpath(meta.get("source") or "")
        if real == source or not real.startswith(storage.rstrip(os.sep) + os.sep):
            raise Conflict("Refusing to delete %s for desktop %s: it is the golden image or lies outside the "
                           "storage directory %s" % (overlay, name, storage), path=overlay)
        with self._call("list domains"):
            others = [d for d in self.conn.listAllDomains(0) if d.name() != name]
        for other in others:
            with contextlib.suppress(DesktopNotFound):
                if any(os.path.realpath(i.source) == real for i, _l in lxml.disks(self._xml(other, True))):
                    raise Conflict("Refusing to delete %s: the domain %s uses it too" % (overlay, other.name()),
                                   path=overlay)
        return real

    # -- resources ----------------------------------------------------------------------------------------------
    def classify(self, facts, change):
        if change.field == "gpu":
            for gpu in change.after or []:
                lxml.normalise_gpu(gpu)
        if facts.state == STATE_SHUTOFF:
            return APPLIED_CONFIG, "the desktop is shut off: the definition changes"
        if facts.state == STATE_SAVED:
            return APPLIED_PENDING, _SAVED_REASON
        if change.field == "gpu":
            return APPLIED_PENDING, _GPU_REASON
        if change.field == "vcpus":
            online = facts.live.vcpus or 1
            if change.after < online:
                raise InvalidInput("%s has %s vCPUs online; vCPUs are never unplugged (use cpu_limit to give it "
                                   "less CPU)" % (facts.name, online), desktop=facts.name)
            if change.after > facts.max_vcpus:
                raise InvalidInput("vcpus=%s is over the maximum %s of %s"
                                   % (change.after, facts.max_vcpus, facts.name), desktop=facts.name)
            return APPLIED_LIVE, "vCPU hot-add"
        if change.field == "memory_mib":
            if change.after > facts.max_memory_mib:
                raise InvalidInput("memory_mib=%s is over the maximum %s MiB of %s"
                                   % (change.after, facts.max_memory_mib, facts.name), desktop=facts.name)
            return APPLIED_LIVE, "memory balloon"
        reasons = {"cpu_limit": "cgroup CPU quota", "net": "interface bandwidth (tc)",
                   "disk_io": "QEMU block I/O throttling"}
        if change.field not in reasons:
            raise InvalidInput("Unknown resource field %r" % change.field)
        return APPLIED_LIVE, reasons[change.field]

    def apply(self, facts, changes):
        dom = self._domain(facts.name)
        fresh = self._facts(dom)  # the desktop may have changed state since the caller read its facts
        done = []
        for change in changes:
            mode, reason = self.classify(fresh, change)
            try:
                self._apply_one(dom, fresh, change, mode)
            except ShadowDeskError as exc:
                exc.details.setdefault("applied", [c.to_dict() for c in done])
                exc.details.setdefault("failed", change.to_dict())
                raise
            done.append(ResourceChange(change.field, change.key, change.before, change.after, mode,
                                       change.reason or reason))
        return done

    def _set(self, what, name, mode, setter):
        """Call ``setter(flags)`` for LIVE|CONFIG (mode live) or CONFIG. Drivers that reject the combined flags
        (VIR_ERR_INVALID_ARG, e.g. the test driver) get LIVE then CONFIG: the guest first, so a refusal leaves the
        definition untouched."""
        lv = self._lv
        if mode != APPLIED_LIVE:
            with self._call(what, name):
                setter(lv.VIR_DOMAIN_AFFECT_CONFIG)
            return
        with self._call(what, name):
            try:
                setter(lv.VIR_DOMAIN_AFFECT_LIVE | lv.VIR_DOMAIN_AFFECT_CONFIG)
                return
            except lv.libvirtError as exc:
                if exc.get_error_code() != lv.VIR_ERR_INVALID_ARG:
                    raise
            setter(lv.VIR_DOMAIN_AFFECT_LIVE)
            setter(lv.VIR_DOMAIN_AFFECT_CONFIG)

    def _apply_one(self, dom, facts, change, mode):
        name = facts.name
        if change.field == "vcpus":
            self._set("set %s vCPUs (hot-add)" % change.after, name, mode,
                      lambda flags: dom.setVcpusFlags(int(change.after), flags))
        elif change.field == "memory_mib":
            self._set("set the memory balloon to %s MiB" % change.after, name, mode,
                      lambda flags: dom.setMemoryFlags(int(change.after) * 1024, flags))
            if mode == APPLIED_LIVE:
                self._record_balloon_target(dom, change.after)
        elif change.field == "cpu_limit":
            # -1 = no quota (cgroup 'max'); libvirt ignores 0 on a running domain.
            quota = int(round(float(change.after) * CPU_PERIOD_US)) if change.after else -1
            params = {"global_period": CPU_PERIOD_US, "global_quota": quota}
            self._set("set the CPU limit to %s CPUs (cgroup global_quota=%s/%s us)"
                      % (change.after, quota, CPU_PERIOD_US), name, mode,
                      lambda flags: dom.setSchedulerParametersFlags(params, flags))
        elif change.field == "net":
            self._apply_net(dom, facts, change, mode)
        elif change.field == "disk_io":
            self._apply_disk(dom, facts, change, mode)
        elif change.field == "gpu":
            self._apply_gpu(dom, facts, change)
        else:
            raise InvalidInput("Unknown resource field %r" % change.field)

    def _apply_net(self, dom, facts, change, mode):
        ifaces = {i["key"]: i for i in lxml.interfaces(self._xml(dom, inactive=True))}
        if change.key not in ifaces:
            raise InvalidInput("%s has no interface %s" % (facts.name, change.key), desktop=facts.name)
        rate = int(change.after.get("rate_kib_s") or 0)
        params = {"inbound.average": rate, "outbound.average": rate}
        # The MAC names the interface in both the live and the persistent definition.
        mac = ifaces[change.key]["mac"]
        self._set("set the bandwidth of %s to %s KiB/s" % (change.key, rate), facts.name, mode,
                  lambda flags: dom.setInterfaceParameters(mac, params, flags))

    def _apply_disk(self, dom, facts, change, mode):
        targets = {info.key: info.target for info, _l in lxml.disks(self._xml(dom, inactive=True))}
        if change.key not in targets:
            raise InvalidInput("%s has no disk %s" % (facts.name, change.key), desktop=facts.name)
        params = {"total_iops_sec": int(change.after.get("total_iops") or 0),
                  "total_bytes_sec": int(change.after.get("total_bytes_sec") or 0)}
        target = targets[change.key]
        self._set("set the I/O limits of %s (%s)" % (change.key, target), facts.name, mode,
                  lambda flags: dom.setBlockIoTune(target, params, flags))

    def _apply_gpu(self, dom, facts, change):
        flags = self._lv.VIR_DOMAIN_AFFECT_CONFIG
        have = set(lxml.gpus(self._xml(dom, inactive=True)))
        want = {lxml.normalise_gpu(g) for g in change.after or []}
        for gpu in sorted(have - want):
            with self._call("detach the GPU %s" % gpu, facts.name):
                dom.detachDeviceFlags(lxml.hostdev_xml(gpu), flags)
        for gpu in sorted(want - have):
            with self._call("attach the GPU %s" % gpu, facts.name):
                dom.attachDeviceFlags(lxml.hostdev_xml(gpu), flags)

    # -- snapshots ----------------------------------------------------------------------------------------------
    def snapshot_create(self, name, snapshot, with_memory=True, description=""):
        dom = self._domain(name)
        facts = self._facts(dom)
        if any(s.name == snapshot for s in facts.snapshots):
            raise Conflict("Desktop %s already has a snapshot %s" % (name, snapshot), desktop=name)
        if facts.has_saved_state:
            raise Conflict("Desktop %s has saved state; start it (or discard the saved state) before taking a "
                           "snapshot" % name, desktop=name)
        not_qcow2 = [d.target for d in facts.disks if d.format != "qcow2"]
        if not_qcow2:
            raise OperationRefused("Internal snapshots need qcow2 disks; %s has other disks: %s"
                                   % (name, ", ".join(not_qcow2)), desktop=name)
        if facts.is_active and not with_memory:
            raise InvalidInput("A snapshot of the running desktop %s includes its memory (internal snapshot); use "
                               "with_memory=true or stop the desktop first" % name, desktop=name)
        xml = "<domainsnapshot><name>%s</name><description>%s</description></domainsnapshot>" % (
            _xml_escape(snapshot), _xml_escape(description or ""))
        with self._call("create the snapshot %s" % snapshot, name):
            dom.snapshotCreateXML(xml, 0)
        return next(s for s in self._facts(dom).snapshots if s.name == snapshot)

    def _snapshot(self, dom, snapshot):
        try:
            return dom.snapshotLookupByName(snapshot, 0)
        except self._lv.libvirtError:
            raise InvalidInput("Desktop %s has no snapshot %s" % (dom.name(), snapshot), desktop=dom.name())

    def snapshot_revert(self, name, snapshot):
        dom = self._domain(name)
        snap = self._snapshot(dom, snapshot)
        with self._call("check the saved state", name):
            saved = dom.hasManagedSaveImage(0)
        if saved:
            # The saved RAM would no longer match the reverted disk: restoring it would corrupt the file system.
            raise Conflict("Desktop %s has saved state; discard it before reverting to %s" % (name, snapshot),
                           desktop=name)
        with self._call("revert to the snapshot %s" % snapshot, name):
            dom.revertToSnapshot(snap, 0)

    def snapshot_delete(self, name, snapshot):
        """Delete the snapshot (metadata and its internal qcow2 data; the disks stay). False if it was absent."""
        dom = self._domain(name)
        try:
            snap = self._snapshot(dom, snapshot)
        except InvalidInput:
            return False
        with self._call("delete the snapshot %s" % snapshot, name):
            snap.delete(0)
        return True


# -- helpers ------------------------------------------------------------------------------------------------------
def _msg(exc):
    return (exc.get_error_message() or str(exc)).strip()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _xml_escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


def _validate_spec(spec):
    if not spec.name or "/" in spec.name:
        raise InvalidInput("Invalid desktop name %r" % spec.name)
    if not spec.source:
        raise InvalidInput("source (the golden image path) is required for the libvirt backend")
    if not 1 <= spec.shadow_vcpus <= spec.max_vcpus:
        raise InvalidInput("shadow_vcpus=%s must be within 1..max_vcpus=%s" % (spec.shadow_vcpus, spec.max_vcpus))
    if not 0 < spec.shadow_memory_mib <= spec.max_memory_mib:
        raise InvalidInput("shadow_memory_mib=%s must be within 1..max_memory_mib=%s"
                           % (spec.shadow_memory_mib, spec.max_memory_mib))
    for key in ("kernel", "initrd"):
        path = (spec.boot or {}).get(key)
        if path and not os.path.isfile(path):
            raise InvalidInput("boot.%s %s does not exist" % (key, path))
    unknown = set(spec.boot or {}) - {"kernel", "initrd", "cmdline"}
    if unknown:
        raise InvalidInput("Unknown boot option(s): %s (known: kernel, initrd, cmdline)" % ", ".join(sorted(unknown)))


def _golden_format(info, source):
    """The golden image's format, refusing a file that is no disk image (qemu-img calls any file 'raw')."""
    fmt = info.get("format") or ""
    size = int(info.get("virtual-size") or 0)
    if fmt == "raw" and (size < MIN_RAW_IMAGE_BYTES or size % 512):
        raise InvalidInput("source %s is not a disk image (a raw file of %s bytes; a golden image is a qcow2 "
                           "image or a raw disk of at least 1 MiB in 512-byte sectors)" % (source, size))
    if not fmt:
        raise InvalidInput("source %s is not a disk image qemu-img can read" % source)
    return fmt


def _run(argv, what):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationRefused("Cannot %s: %s" % (what, exc)) from None
    if proc.returncode != 0:
        raise OperationRefused("Cannot %s: %s" % (what, (proc.stderr or proc.stdout).strip()),
                               command=" ".join(argv))
    return proc.stdout


def _image_info(qemu_img, path):
    # -U: the image may be open by a running guest (golden images always are); we only read its header.
    out = _run([qemu_img, "info", "-U", "--output=json", path], "read the image %s" % path)
    try:
        return json.loads(out)
    except ValueError:
        raise OperationRefused("qemu-img info %s returned no JSON" % path) from None


def _kib_to_mib(value):
    return round(value / 1024.0, 1)


def _memory_stats(stats):
    names = {"actual": "actual_mib", "unused": "unused_mib", "available": "available_mib", "rss": "rss_mib"}
    return {ours: _kib_to_mib(stats[theirs]) for theirs, ours in names.items() if theirs in stats}


def _block_stats(stats):
    rd_req, rd_bytes, wr_req, wr_bytes = stats[:4]
    return {"rd_bytes": rd_bytes, "wr_bytes": wr_bytes, "rd_req": rd_req, "wr_req": wr_req}


def _net_stats(stats):
    return {"rx_bytes": stats[0], "tx_bytes": stats[4]}
