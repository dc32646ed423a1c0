"""One face for the two hypervisors the module suite runs against.

``LibvirtDesk`` drives the real libvirtd with real QEMU guests and asks the *guest* (its serial console) whether
it saw a change; ``ProxmoxDesk`` drives the schema-faithful PVE stand-in and reads its state. The module tests
are written once against this face and parametrised over both.
"""

from __future__ import annotations

import hashlib
import pathlib
import xml.etree.ElementTree as ET

import pytest

from integration.testbed import BASE_CMDLINE, SerialConsole, destroy_domain, unique_name

SHADOW = dict(max_vcpus=4, max_memory_mib=512, shadow_vcpus=1, shadow_memory_mib=256)


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LibvirtDesk:
    backend = "libvirt"
    observes_guest = True

    def __init__(self, testbed):
        self.testbed = testbed
        self.conn = testbed.connect()
        self.names = []
        self.storage = str(pathlib.Path(testbed.images_dir) / "desktops")

    @property
    def connection(self):
        return {"backend": "libvirt", "uri": self.testbed.uri}

    def new_name(self):
        name = unique_name("sdtest-")
        self.names.append(name)
        return name

    def create_args(self, name, user):
        return dict(self.connection, name=name, user=user, source=self.testbed.golden_image,
                    storage=self.storage, network=self.testbed.network, domain_type=self.testbed.domain_type,
                    boot={"kernel": self.testbed.kernel, "initrd": self.testbed.initrd, "cmdline": BASE_CMDLINE},
                    **SHADOW)

    def source_fingerprint(self):
        return file_digest(self.testbed.golden_image)

    def console(self, name):
        """The guest's serial console (path from the domain's own XML, as the backend wrote it)."""
        root = ET.fromstring(self.conn.lookupByName(name).XMLDesc(0))
        for element in root.iter("serial"):
            source = element.find("source")
            if source is not None and source.get("path"):
                return SerialConsole(source.get("path"))
        raise AssertionError("domain %s has no file-backed serial console" % name)

    def wait_booted(self, name, timeout=120):
        console = self.console(name)
        console.wait_for("SHADOWDESK-READY", timeout=timeout)
        return console

    def guest_stat(self, name, timeout=60, **want):
        """Wait until the guest itself reports ``want`` (e.g. cpus=2) on its console."""
        console = self.console(name)
        console.offset = 0
        return console.wait_stat(timeout=timeout, **want)

    def state_fingerprint(self):
        """Everything a module could change: domain definitions, states, files in the desktop dir."""
        import libvirt  # lazily, as in testbed.Testbed.connect

        state = {}
        for dom in self.conn.listAllDomains():
            if dom.name() in self.names:
                # The live XML's currentMemory follows the guest's balloon as it settles, so it is not a
                # fingerprint of what *we* changed: take the definition, the online vCPUs and the balloon target.
                active = dom.isActive()
                state[dom.name()] = (
                    dom.state()[0], dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), dom.hasManagedSaveImage(0),
                    sorted(s.getName() for s in dom.listAllSnapshots()),
                    dom.vcpusFlags(libvirt.VIR_DOMAIN_VCPU_LIVE) if active else None,
                    dom.schedulerParameters() if active else None,
                )
        files = sorted(p.name for p in pathlib.Path(self.storage).glob("*")) if pathlib.Path(self.storage).exists() else []
        return state, files

    def disk_path(self, name):
        return str(pathlib.Path(self.storage) / ("%s.qcow2" % name))

    def disk_exists(self, name):
        return pathlib.Path(self.disk_path(name)).exists()

    def cleanup(self):
        for name in self.names:
            destroy_domain(self.conn, name, (self.disk_path(name),))
        self.conn.close()


class ProxmoxDesk:
    backend = "proxmox"
    observes_guest = False
    TEMPLATE_VMID = 9000

    def __init__(self, pve):
        self.pve = pve
        self.names = []
        pve.add_template("pve1", self.TEMPLATE_VMID, "golden-desktop")

    @property
    def connection(self):
        return {"backend": "proxmox", "api_host": self.pve.host, "api_port": self.pve.port,
                "api_user": self.pve.token_user, "api_token_id": self.pve.token_name,
                "api_token_secret": self.pve.token_value, "ca_path": self.pve.ca_path, "node": "pve1",
                "api_timeout": 30}

    def new_name(self):
        name = unique_name("sdtest-")
        self.names.append(name)
        return name

    def create_args(self, name, user):
        return dict(self.connection, name=name, user=user, source=str(self.TEMPLATE_VMID), **SHADOW)

    def source_fingerprint(self):
        return repr(self.pve.vm(self.TEMPLATE_VMID))

    def state_fingerprint(self):
        return self.pve.snapshot_state()

    def vm_by_name(self, name):
        for vmid in list(self.pve.vms):
            vm = self.pve.vm(vmid)
            if vm["config"].get("name") == name:
                return vmid, vm
        return None, None

    def disk_exists(self, name):
        return self.vm_by_name(name)[0] is not None

    def cleanup(self):
        pass


@pytest.fixture(params=[pytest.param("libvirt", marks=pytest.mark.libvirt),
                        pytest.param("proxmox", marks=pytest.mark.pve)])
def desk(request):
    """The same test on both faces: real libvirtd + QEMU guests, and the PVE stand-in."""
    if request.param == "libvirt":
        testbed = request.getfixturevalue("libvirt_testbed")
        print("libvirt accel: %s" % testbed.accel)
        face = LibvirtDesk(testbed)
    else:
        face = ProxmoxDesk(request.getfixturevalue("pve_stand_in"))
    try:
        yield face
    finally:
        face.cleanup()
