# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: runs ``ip``/``tc``/``nft`` on the hypervisor host, optionally inside a network namespace.

Every host-side change of the network shadow goes through here, so a refused command becomes OperationRefused
with the tool's own message (never a traceback) and a missing tool says which package provides it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import MissingDependency, OperationRefused

TOOLS = {"ip": "iproute2", "tc": "iproute2", "nft": "nftables"}


class HostRunner:
    """``run(argv)`` on this host, or inside ``netns`` when given (``ip netns exec NS ...``)."""

    def __init__(self, netns=None, timeout=60):
        self.netns = netns
        self.timeout = timeout

    def _argv(self, argv):
        tool = argv[0]
        path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
        if path is None:
            raise MissingDependency("the command %s is required for the network shadow (install the %s package)"
                                    % (tool, TOOLS.get(tool, tool)), command=tool)
        full = [path] + list(argv[1:])
        if self.netns:
            full = [shutil.which("ip") or "ip", "netns", "exec", self.netns] + full
        return full

    def run(self, argv, stdin=None, check=True):
        """(returncode, stdout, stderr); a non-zero exit raises OperationRefused when ``check``."""
        try:
            proc = subprocess.run(self._argv(argv), input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout, env=dict(os.environ, LC_ALL="C"), check=False)
        except subprocess.TimeoutExpired:
            raise OperationRefused("%s did not finish within %d s" % (" ".join(argv[:4]), self.timeout)) from None
        if check and proc.returncode != 0:
            raise OperationRefused("%s failed: %s" % (" ".join(argv), (proc.stderr or proc.stdout).strip()[:500]),
                                   command=list(argv), rc=proc.returncode)
        return proc.returncode, proc.stdout, proc.stderr

    def json(self, argv, default=None):
        """The JSON a ``-j`` command prints (``default`` when it prints nothing)."""
        out = self.run(argv)[1]
        out = out.strip()
        if not out:
            return default
        try:
            return json.loads(out)
        except ValueError:
            raise OperationRefused("%s printed something that is not JSON: %r" % (" ".join(argv), out[:200])) from None

    def interface_exists(self, name):
        rc = self.run(["ip", "link", "show", "dev", name], check=False)[0]
        return rc == 0
