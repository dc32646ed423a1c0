"""A real ``ansible-rulebook`` process running the collection's sessions rulebook, and a broker and a VNC viewer
to talk to it. Loopback only.

The rulebook is the shipped ``extensions/eda/rulebooks/sessions.yml``, running the collection's own flows. The
collection is found the way a decision environment finds it: ``ANSIBLE_COLLECTIONS_PATH`` only, no ``PYTHONPATH``
(the source plugins must import the collection themselves).
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"
RULEBOOK = ROOT / "extensions" / "eda" / "rulebooks" / "sessions.yml"
TOKEN = "test-token-0123456789abcdef"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Rulebook:
    """The sessions rulebook by default (ready when its webhook answers); ``rulebook``/``variables`` run another
    shipped rulebook, ready once ansible-rulebook runs."""

    def __init__(self, workdir, env, hypervisor_events=True, rulebook=RULEBOOK, variables=None):
        self.workdir = pathlib.Path(workdir)
        self.port = free_port()
        self.rulebook = rulebook
        self.has_webhook = rulebook == RULEBOOK
        (self.workdir / "inventory.yml").write_text(
            "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
            "      ansible_python_interpreter: %s\n" % sys.executable)
        (self.workdir / "vars.yml").write_text(yaml.safe_dump(variables if variables is not None else {
            "shadowdesk_webhook_port": self.port, "shadowdesk_hypervisor_events": hypervisor_events}))
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.env.update(ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), SHADOWDESK_WEBHOOK_TOKEN=TOKEN,
                        ANSIBLE_FORCE_COLOR="0", **env)
        self.log_path = self.workdir / "rulebook.log"
        self.proc = None

    def __enter__(self):
        log = open(self.log_path, "wb")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [str(pathlib.Path(sys.executable).parent / "ansible-rulebook"), "-r", str(self.rulebook),
             "-i", str(self.workdir / "inventory.yml"), "--vars", str(self.workdir / "vars.yml"),
             "--print-events", "-v"],
            cwd=str(self.workdir), env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if not self.has_webhook:
            return self
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("ansible-rulebook did not start:\n" + self.log())
            time.sleep(0.3)

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log(self):
        """The end of the log, for assertion messages."""
        return self.full_log()[-6000:]

    def full_log(self):
        return self.log_path.read_text(errors="replace")

    def request(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=180)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        return resp.status, (json.loads(data) if data else None)

    def post(self, payload, token=TOKEN, content_type="application/json"):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = "Bearer " + token
        return self.request("POST", "/session", body, headers)

    def plays_finished(self):
        return self.full_log().count("PLAY RECAP")

    def plays_running(self):
        """Plays started (each flow playbook is one play) and not finished yet."""
        text = self.full_log()
        return len(re.findall(r"^PLAY \[", text, re.M)) - text.count("PLAY RECAP")

    def failed_plays(self):
        """PLAY RECAP lines of plays that failed or hit an unreachable host (a flow that broke)."""
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if re.search(r"\b(failed|unreachable)=[1-9]", line)]

    def events_received(self):
        return self.log_path.read_text(errors="replace").count("[received event]")


def wait_until(predicate, timeout, what, log=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s%s" % (what, "\n" + log() if log else ""))
        time.sleep(0.25)


class VncViewer:
    """A minimal RFB 3.8 client: connects, completes the handshake (security type None) and stays attached."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=30)
        version = self._recv(12)
        assert version.startswith(b"RFB "), version
        self.sock.sendall(b"RFB 003.008\n")
        count = self._recv(1)[0]
        types = self._recv(count)
        assert 1 in types, "the VNC server offers no 'None' security: %r" % types
        self.sock.sendall(b"\x01")
        assert self._recv(4) == b"\0\0\0\0", "VNC security handshake failed"
        self.sock.sendall(b"\x01")  # ClientInit, shared
        self._recv(24)  # ServerInit head: the server considers the client initialised now

    def _recv(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise AssertionError("the VNC server closed the connection")
            data += chunk
        return data

    def close(self):
        self.sock.close()
