# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the libvirt backend's storage and overlays: creating a desktop (its checks, its qcow2 overlay on the
golden image, its definition) and removing it (its overlay only when asked, and only when it is safely ours).

A mixin of ``LibvirtBackend`` (``libvirt.py``), which gives it the connection, ``_call``, ``_xml``, ``_find``...

Decisions taken here:
- Each desktop is a qcow2 overlay ``<storage>/<name>.qcow2`` on its golden image, which is never written. An
  overlay of the same golden image left by an earlier ``remove`` without ``remove_storage`` holds the user's data
  and is reused; any other file at that path is refused, as is an overlay another domain uses.
- ``remove_storage`` deletes only the overlay recorded in our metadata, inside the storage directory, never the
  golden image or a disk another domain uses; it deletes after the undefine, so a failed unlink leaves a stray
  file, never a domain pointing at a deleted disk.
- ``check_create`` runs every check of ``create`` that changes nothing (unknown machine options, a host too small
  for the full size, a missing network, a golden image that is no disk image).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_xml as lxml
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_domain import MACHINE_DEFAULTS, render_domain_xml
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    Conflict, DesktopNotFound, InvalidInput, OperationRefused, ShadowDeskError,
)

DEFAULT_STORAGE = "/var/lib/libvirt/images/shadowdesk/desktops"
MIN_RAW_IMAGE_BYTES = 1024 * 1024


class LibvirtStorage:
    """Creating and removing desktops: checks, overlays, definitions."""

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
