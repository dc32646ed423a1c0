"""The real libvirt + QEMU test bed: helpers and pytest fixtures.

``libvirt_testbed`` (session scope) runs ``scripts/testbed/setup.sh`` once (starts libvirtd/virtlogd without systemd,
the isolated network, the storage pool, builds/caches the guest) and returns a :class:`Testbed`.

The guest is a Debian cloud kernel + busybox initramfs. On ttyS0 it prints ``SHADOWDESK-READY ...`` once, then
``SDSTAT seq=<n> cpus=<online> memtotal_kb=<MemTotal> uptime=<s>`` whenever cpus/MemTotal change and every
``sd_hb`` seconds (kernel cmdline, default 5; 0 = every ``sd_tick``, default 0.5 s). It onlines hot-added vCPUs
itself. See tests/integration/README.md for the domain XML a guest needs.

The fixtures reach test modules through ``tests/integration/conftest.py`` (its ``__all__``); test modules use
them by name and import only helpers, e.g. ``from integration.testbed import READY_MARKER, running_accel``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
import time
import uuid
from typing import Iterator, Optional
from xml.sax.saxutils import escape, quoteattr

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SETUP_SCRIPT = ROOT / "scripts" / "testbed" / "setup.sh"
BUILD_GUEST_SCRIPT = ROOT / "scripts" / "testbed" / "build_guest.sh"

URI = "qemu:///system"
IMAGES_DIR = pathlib.Path("/var/lib/libvirt/images/shadowdesk")
CONSOLE_DIR = pathlib.Path("/var/log/libvirt/shadowdesk")
NETWORK = "shadowdesk-isolated"
POOL = "shadowdesk"
READY_MARKER = "SHADOWDESK-READY"
# Kernel command line the guest needs: serial console on ttyS0; panic -> reboot -> domain destroyed (on_reboot);
# no_timer_check: Linux's boot-time IO-APIC timer check panics a TCG guest whose vCPU thread is starved by a busy
# host ("IO-APIC + timer doesn't work"), seen with several test sessions at once.
BASE_CMDLINE = "console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check"
SDSTAT_RE = re.compile(
    r"SDSTAT seq=(?P<seq>\d+) cpus=(?P<cpus>\d+) memtotal_kb=(?P<memtotal_kb>\d+) uptime=(?P<uptime>[\d.]+)"
)


@dataclasses.dataclass(frozen=True)
class Testbed:
    uri: str
    kernel: str
    initrd: str
    golden_image: str
    network: str
    images_dir: str
    accel: str  # what the test bed's domains use: 'tcg' (<domain type='qemu'>) or 'kvm'
    kernel_version: str
    console_dir: str
    pool: str = POOL

    @property
    def domain_type(self) -> str:
        return "kvm" if self.accel == "kvm" else "qemu"

    def connect(self):
        import libvirt  # lazily: helpers import without libvirt-python (the collection uses _deps)

        return libvirt.open(self.uri)

    def overlay(self, name: str) -> str:
        """Create ``<images_dir>/<name>.qcow2`` backed by the golden image (snapshots/managedSave work on it)."""
        path = pathlib.Path(self.images_dir) / f"{name}.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", self.golden_image, str(path)],
            check=True, capture_output=True, text=True,
        )
        return str(path)

    def console_path(self, name: str) -> str:
        return str(pathlib.Path(self.console_dir) / f"{name}.log")


def unique_name(prefix: str = "sdtest-") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def guest_dir_of_checkout() -> pathlib.Path:
    """Where this checkout's build_guest.sh keeps its guest (one directory per version of the script)."""
    out = subprocess.run(["bash", str(BUILD_GUEST_SCRIPT), "--print-dir"], capture_output=True, text=True,
                         check=True, timeout=30)
    return pathlib.Path(out.stdout.strip())


def run_setup() -> Testbed:
    """Run scripts/testbed/setup.sh (idempotent) and describe the test bed."""
    proc = subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/testbed/setup.sh failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}".rstrip()
        )
    guest_dir = guest_dir_of_checkout()
    stamp = dict(
        line.split("=", 1) for line in (guest_dir / "stamp").read_text().splitlines() if "=" in line
    )
    CONSOLE_DIR.mkdir(parents=True, exist_ok=True)
    return Testbed(
        uri=URI,
        kernel=str(guest_dir / "vmlinuz"),
        initrd=str(guest_dir / "initrd.img"),
        golden_image=str(guest_dir / "golden.qcow2"),
        network=NETWORK,
        images_dir=str(IMAGES_DIR),
        accel=os.environ.get("SD_TESTBED_ACCEL", "tcg"),
        kernel_version=stamp.get("kernel", "?"),
        console_dir=str(CONSOLE_DIR),
    )


class SerialConsole:
    """Reads a guest's appended serial console log file from an offset.

    ``wait_for`` consumes the file up to the end of the match, so successive calls find successive events.
    ``mark()`` skips everything written so far (e.g. before a restore, to demand a *fresh* line).
    """

    def __init__(self, path: str, offset: int = 0):
        self.path = path
        self.offset = offset
        self._buf = ""

    def _size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def mark(self) -> int:
        self.offset = self._size()
        self._buf = ""
        return self.offset

    def _read_new(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        if data:
            self.offset += len(data)
            self._buf += data.decode("utf-8", "replace").replace("\r", "")

    def wait_for(self, regex, timeout: float = 60.0, poll: float = 0.01) -> re.Match:
        """Wait until a complete line matching ``regex`` appears after the current position; return the match."""
        pattern = re.compile(regex) if isinstance(regex, str) else regex
        deadline = time.monotonic() + timeout
        while True:
            self._read_new()
            # only complete lines: a half-written line must not match a prefix of itself
            end = self._buf.rfind("\n") + 1
            m = pattern.search(self._buf, 0, end)
            if m:
                nl = self._buf.find("\n", m.end())
                self._buf = self._buf[nl + 1:] if nl >= 0 else self._buf[m.end():]
                return m
            self._buf = self._buf[end - 4096:] if end > 8192 else self._buf  # keep memory bounded
            if time.monotonic() >= deadline:
                tail = self.tail()
                raise TimeoutError(f"no line matching {pattern.pattern!r} in {self.path} within {timeout}s; "
                                   f"console tail:\n{tail}")
            time.sleep(poll)

    def wait_stat(self, timeout: float = 60.0, **want) -> dict:
        """Wait for an SDSTAT line whose fields satisfy ``want`` (e.g. cpus=2); returns the parsed line."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.wait_for(SDSTAT_RE, max(0.0, deadline - time.monotonic()))
            stat = parse_sdstat(m)
            if all(stat[k] == v for k, v in want.items()):
                return stat

    def text_since(self, offset: int) -> str:
        """Everything written to the console file from byte ``offset`` (e.g. a value returned by ``mark()``)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def tail(self, nbytes: int = 2000) -> str:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(max(0, self._size() - nbytes))
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no console file)"


def parse_sdstat(m) -> dict:
    if isinstance(m, str):
        m = SDSTAT_RE.search(m)
    return {"seq": int(m["seq"]), "cpus": int(m["cpus"]), "memtotal_kb": int(m["memtotal_kb"]),
            "uptime": float(m["uptime"])}


def wait_balloon(dom, target_kib: int, timeout: float = 60.0) -> None:
    """Wait until the guest's balloon driver reports the target size (libvirt memoryStats 'actual')."""
    deadline = time.monotonic() + timeout
    while dom.memoryStats().get("actual") != target_kib:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"balloon of {dom.name()} did not reach {target_kib} KiB: {dom.memoryStats()}")
        time.sleep(0.02)


def settled_stat(dom, console: SerialConsole, target_kib: int, timeout: float = 60.0) -> dict:
    """The guest's SDSTAT once its balloon reached ``target_kib`` (a line printed after that point)."""
    wait_balloon(dom, target_kib, timeout)
    console.mark()
    return console.wait_stat(timeout)


def guest_domain_xml(
    name: str,
    testbed: Testbed,
    *,
    vcpus: int = 1,
    max_vcpus: int = 4,
    memory_mib: int = 512,
    current_memory_mib: int = 256,
    disk: Optional[str] = None,
    nic: bool = True,
    console_log: Optional[str] = None,
    cmdline_extra: str = "",
) -> str:
    """Domain XML that boots the test guest (see tests/integration/README.md for what each element is for)."""
    console_log = console_log or testbed.console_path(name)
    cmdline = f"{BASE_CMDLINE} {cmdline_extra}".strip()
    devices = []
    if disk:
        devices.append(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2' discard='unmap'/>"
            f"<source file={quoteattr(disk)}/><target dev='vda' bus='virtio'/></disk>"
        )
    if nic:
        devices.append(
            f"<interface type='network'><source network={quoteattr(testbed.network)}/>"
            "<model type='virtio'/></interface>"
        )
    devices.append(
        f"<serial type='file'><source path={quoteattr(console_log)} append='on'/><target port='0'/></serial>"
        f"<console type='file'><source path={quoteattr(console_log)} append='on'/>"
        "<target type='serial' port='0'/></console>"
    )
    # The guest runs Debian's qemu-guest-agent on this port (tests drive the guest through guest_exec()).
    devices.append("<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>")
    devices.append("<controller type='usb' model='none'/>")
    devices.append("<memballoon model='virtio'><stats period='1'/></memballoon>")
    return f"""<domain type='{testbed.domain_type}'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <currentMemory unit='MiB'>{current_memory_mib}</currentMemory>
  <vcpu placement='static' current='{vcpus}'>{max_vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(testbed.kernel)}</kernel>
    <initrd>{escape(testbed.initrd)}</initrd>
    <cmdline>{escape(cmdline)}</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    {chr(10).join('    ' + d for d in devices).strip()}
  </devices>
</domain>
"""


def running_accel(dom) -> str:
    """The accelerator QEMU really uses for a running domain ('kvm' or 'tcg'), asked from the QEMU monitor."""
    import libvirt_qemu  # lazily, as in Testbed.connect

    out = libvirt_qemu.qemuMonitorCommand(dom, "info kvm", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
    return "kvm" if "enabled" in out else "tcg"


def destroy_domain(conn, name: str, files: tuple = ()) -> None:
    """Destroy + undefine (with managed save, snapshot metadata, NVRAM) a domain if it exists; delete files."""
    import libvirt  # lazily, as in Testbed.connect

    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        dom = None
    if dom is not None:
        try:
            if dom.isActive():
                dom.destroy()
        except libvirt.libvirtError:
            pass
        try:
            dom.undefineFlags(
                libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
                | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            )
        except libvirt.libvirtError:
            pass
    for f in files:
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass


class DomainJanitor:
    """Creates guest domains for a test and removes them (and their overlay + console log) afterwards."""

    def __init__(self, testbed: Testbed):
        self.testbed = testbed
        self.conn = testbed.connect()
        self._owned: list = []

    def define_guest(self, name: Optional[str] = None, *, disk: bool = True, **xml_kw):
        """Define (not start) a guest; returns (dom, SerialConsole)."""
        name = name or unique_name()
        overlay = self.testbed.overlay(name) if disk else None
        console = self.testbed.console_path(name)
        self._owned.append((name, tuple(f for f in (overlay, console) if f)))
        dom = self.conn.defineXML(guest_domain_xml(name, self.testbed, disk=overlay, console_log=console, **xml_kw))
        return dom, SerialConsole(console)

    def cleanup(self) -> None:
        for name, files in reversed(self._owned):
            destroy_domain(self.conn, name, files)
        self._owned.clear()
        self.conn.close()


@pytest.fixture(scope="session")
def libvirt_testbed() -> Testbed:
    try:
        return run_setup()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"libvirt test bed unavailable: {exc}", pytrace=False)


@pytest.fixture
def sd_domains(libvirt_testbed: Testbed) -> Iterator[DomainJanitor]:
    janitor = DomainJanitor(libvirt_testbed)
    try:
        yield janitor
    finally:
        janitor.cleanup()


# --------------------------------------------------------------------------------------------------------------
# The guest agent (Debian's qemu-guest-agent inside the test guest, see scripts/testbed/build_guest.sh)
# --------------------------------------------------------------------------------------------------------------


def _agent(dom, command: dict, timeout: int = 10) -> dict:
    import json

    import libvirt_qemu  # lazily, as in Testbed.connect

    return json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps(command), timeout, 0))


def guest_agent_ping(dom, timeout: float = 60.0) -> None:
    """Wait until the guest agent answers (it starts a moment after the kernel, and again after a restore)."""
    import libvirt  # lazily

    deadline = time.monotonic() + timeout
    while True:
        try:
            _agent(dom, {"execute": "guest-ping"}, timeout=2)
            return
        except libvirt.libvirtError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"guest agent of {dom.name()} did not answer within {timeout} s: {exc}") from exc
            time.sleep(0.2)


def guest_exec(dom, argv: list, timeout: float = 60.0, stdin: Optional[bytes] = None) -> tuple:
    """Run ``argv`` inside the guest through the agent; wait for it; return (exitcode, stdout, stderr) as text.

    The guest is busybox: ``["/bin/sh", "-c", "..."]`` runs a shell line.
    """
    import base64

    guest_agent_ping(dom, timeout=timeout)
    args = {"path": argv[0], "arg": list(argv[1:]), "capture-output": True}
    if stdin is not None:
        args["input-data"] = base64.b64encode(stdin).decode()
    pid = _agent(dom, {"execute": "guest-exec", "arguments": args})["return"]["pid"]
    deadline = time.monotonic() + timeout
    while True:
        status = _agent(dom, {"execute": "guest-exec-status", "arguments": {"pid": pid}})["return"]
        if status.get("exited"):
            def text(key):
                return base64.b64decode(status.get(key, "")).decode("utf-8", "replace")
            return status.get("exitcode", -1), text("out-data"), text("err-data")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{argv} in {dom.name()} still running after {timeout} s")
        time.sleep(0.05)


def guest_spawn(dom, shell_line: str, timeout: float = 60.0) -> int:
    """Start a shell line in the guest in the background (e.g. a CPU burner); returns the agent's pid for it."""
    guest_agent_ping(dom, timeout=timeout)
    args = {"path": "/bin/sh", "arg": ["-c", shell_line], "capture-output": False}
    return _agent(dom, {"execute": "guest-exec", "arguments": args})["return"]["pid"]
