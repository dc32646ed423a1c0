"""Helpers of the session-flow tests: run the collection's playbooks as real ansible-playbook processes."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(pathlib.Path(sys.executable).parent / "ansible-playbook")


class PlaybookRun:
    def __init__(self, proc):
        self.proc = proc
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.output = proc.stdout + proc.stderr
        recap = re.search(r"localhost\s*: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", proc.stdout)
        self.changed = int(recap.group(2)) if recap else None
        self.failed = int(recap.group(3)) if recap else None

    def ok(self):
        assert self.rc == 0, self.output[-6000:]
        assert "Traceback" not in self.output, self.output[-6000:]
        return self


def run_playbook(name, tmp_path, extra, env=None, check=False, timeout=600):
    """``ansible-playbook shadowdesk.vdi.<name> -e @vars.yml``; returns a PlaybookRun (not asserted)."""
    vars_file = tmp_path / ("vars-%s-%d.yml" % (name, len(list(tmp_path.glob("vars-*")))))
    vars_file.write_text(yaml.safe_dump(extra))
    argv = [ANSIBLE_PLAYBOOK, "shadowdesk.vdi.%s" % name, "-e", "@%s" % vars_file]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=str(ROOT), timeout=timeout, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", **(env or {})))
    return PlaybookRun(proc)


def result_fact(run, name):
    """The JSON a role printed with ``debug: var=<name>`` (last occurrence)."""
    match = re.findall(r'"%s": (\{.*?\n    \})' % re.escape(name), run.stdout, re.S)
    assert match, run.stdout[-3000:]
    return yaml.safe_load(match[-1])


VNC_XML = ("<graphics type='vnc' autoport='yes' listen='127.0.0.1'>"
           "<listen type='address' address='127.0.0.1'/></graphics>")


def add_vnc(conn, name):
    """Give a shut-off libvirt desktop a VNC console on loopback (as an operator's desktop pool would have)."""
    import libvirt  # only the libvirt tests use this helper
    dom = conn.lookupByName(name)
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<graphics" not in xml
    conn.defineXML(xml.replace("</devices>", VNC_XML + "</devices>", 1))


class VncClient:
    """A minimal RFB client on loopback: handshake with security type None, then hold the connection open,
    as a user's viewer does. QEMU lists it in ``query-vnc`` for as long as the socket is open."""

    def __init__(self, conn, name, timeout=30.0):
        import socket
        import xml.etree.ElementTree as ET
        root = ET.fromstring(conn.lookupByName(name).XMLDesc(0))
        graphics = root.find("./devices/graphics[@type='vnc']")
        port = int(graphics.get("port"))
        assert port > 0, "the guest has no VNC port (not running?)"
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        version = self._read(12)
        assert version.startswith(b"RFB "), version
        self.sock.sendall(b"RFB 003.008\n")
        count = self._read(1)[0]
        assert count > 0, self._read(4)
        types = self._read(count)
        assert 1 in types, "QEMU offers no security type None: %r" % types
        self.sock.sendall(b"\x01")
        assert self._read(4) == b"\x00\x00\x00\x00", "security handshake failed"
        self.sock.sendall(b"\x01")  # ClientInit: shared
        header = self._read(24)
        self._read(int.from_bytes(header[20:24], "big"))  # desktop name

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "VNC server closed the connection"
            data += chunk
        return data

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
