# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the libvirt backend (``backend: libvirt``). Only the ``_libvirt_*`` files talk to libvirt-python.

Options read from the module parameters: ``uri`` (default ``qemu:///system``), ``shutdown_timeout`` (seconds a
graceful ``stop`` waits for the guest, default 20), ``storage`` (overlay directory when ``ShadowSpec.storage`` is
not given).

``LibvirtBackend`` is composed of one part per concern, each a mixin in its own file:
- ``_libvirt_storage``: creation and removal, overlays on golden images;
- ``_libvirt_resources``: classify/apply resource changes (live resizing, limits, GPUs), utilisation, host size;
- ``_libvirt_saved_state``: managed save (hibernation) and snapshots;
and delegates to ``_libvirt_connection`` (opening the connection, error mapping), ``_libvirt_shadow_nic`` (the
network shadow's NIC), ``_libvirt_activity`` (console clients, guest agent), ``_libvirt_xml`` (XML <-> model) and
``_libvirt_domain`` (the domain XML of a new desktop). This file keeps the connection, facts and power states.

Decisions taken here (the parts document their own):
- Every libvirt call goes through ``_call``, which turns ``libvirtError`` into ``_errors`` (no libvirtError
  escapes; the mapping is ``_libvirt_connection.mapped_error``). A lost connection is reopened by the next call.
- ``stop(force=False)`` asks for an ACPI shutdown, waits ``shutdown_timeout`` s, then powers off and says so in
  its return value (a guest without an ACPI daemon never shuts down on its own). Disks are kept either way.
- A managed-save image counts as saved state only when it is complete (``_power_state``, docs/decisions.md D16).
"""

from __future__ import annotations

import contextlib
import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_activity as _activity
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_connection as connection
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_shadow_nic as shadow_nic
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_xml as lxml
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_resources import LibvirtResources
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_saved_state import LibvirtSavedState
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_storage import LibvirtStorage
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.base import DesktopBackend, option_seconds
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import BackendUnavailable, DesktopNotFound, OperationRefused
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    STATE_PAUSED, STATE_RUNNING, STATE_SAVED, STATE_SHUTOFF, DesktopFacts,
)

DEFAULT_URI = "qemu:///system"
DEFAULT_SHUTDOWN_TIMEOUT = 20.0
KEEPALIVE_MAX_S = 20.0  # a daemon that does not answer for this long is treated as down
SHADOW_TAG = "shadowdesk"


class LibvirtBackend(LibvirtStorage, LibvirtResources, LibvirtSavedState, DesktopBackend):
    name = "libvirt"

    def __init__(self, options):
        super().__init__(options or {})
        self._lv = connection.client()
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
        return connection.open_connection(self._lv, self.uri, self._answer_within())

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

    def _mapped(self, exc, what, name=None, refused=OperationRefused):
        """The ShadowDeskError for a libvirtError; a lost connection is dropped so the next call opens a new one."""
        error = connection.mapped_error(self._lv, exc, self.uri, what, name, refused)
        if isinstance(error, BackendUnavailable):
            self._conn = None
        return error

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

    # -- power states -------------------------------------------------------------------------------------------
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
