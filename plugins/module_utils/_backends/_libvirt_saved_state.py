# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the libvirt backend's saved user state: the managed-save image (hibernation) and snapshots.

A mixin of ``LibvirtBackend`` (``libvirt.py``), which gives it the connection, ``_call``, ``_facts``...

Decisions taken here:
- ``save`` uses managed save with VIR_DOMAIN_SAVE_RUNNING so ``start`` always ends running, even when the desktop
  was paused when saved (lifecycle ``saved -> paused`` is start + pause). A save that ends without a complete
  image is an error (docs/decisions.md D16).
- Snapshots are internal qcow2 snapshots: with RAM when the desktop is running/paused, disk-only when shut off.
  A disk-only snapshot of a running desktop would be an external snapshot (new overlay files that this libvirt
  cannot revert to), so it is refused with InvalidInput rather than silently taking another kind.
- No snapshot is taken or reverted to while a saved image exists: the saved RAM would no longer match the disk.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_xml as lxml
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_connection import connection_lost
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import Conflict, InvalidInput, OperationRefused
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import STATE_SAVED, STATE_SHUTOFF


class LibvirtSavedState:
    """The managed-save image and the snapshots of a desktop."""

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

    def discard_saved_state(self, name):
        dom = self._domain(name)
        with self._call("discard the saved state", name):
            if dom.hasManagedSaveImage(0):
                dom.managedSaveRemove(0)

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
            if connection_lost(self._lv, exc):
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

    def _snapshots(self, dom):
        result = [lxml.snapshot(snap.getXMLDesc(0)) for snap in dom.listAllSnapshots(0)]
        return sorted(result, key=lambda s: (s.created or "", s.name))

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


def _xml_escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;").replace('"', "&quot;"))
