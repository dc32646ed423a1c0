"""Network namespaces for host-side network shadow tests: a 'host' namespace with a bridge (the shadow bridge),
desktop namespaces on veth ports of it, and a 'net' namespace holding destination addresses behind a router.

Only 198.18.0.0/15 addresses, all inside namespaces created here; everything is deleted on exit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow.runner import HostRunner


def sh(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True)


class ShadowNet:
    """host ns: bridge sdbr0 198.18.0.1/24, ports vd1..vdN -> desktop ns eth0 198.18.0.1x; net ns: 198.19.x.1."""

    def __init__(self, desktops=1, destinations=("198.19.1.1", "198.19.3.1")):
        tag = uuid.uuid4().hex[:6]
        self.host, self.net = "sdt-h-" + tag, "sdt-n-" + tag
        self.desks = ["sdt-d%d-%s" % (i, tag) for i in range(1, desktops + 1)]
        self.ports = ["vd%d" % i for i in range(1, desktops + 1)]
        self.destinations = destinations
        self.runner = HostRunner(netns=self.host)

    def __enter__(self):
        try:
            self._build()
        except Exception:
            self.close()
            raise
        return self

    def _build(self):
        for ns in [self.host, self.net] + self.desks:
            sh("ip", "netns", "add", ns)
        h, n = ("ip", "-n", self.host), ("ip", "-n", self.net)
        sh(*h, "link", "add", "sdbr0", "type", "bridge")
        sh(*h, "addr", "add", "198.18.0.1/24", "dev", "sdbr0")
        sh(*h, "link", "set", "sdbr0", "up")
        sh(*h, "link", "add", "up0", "type", "veth", "peer", "name", "up1", "netns", self.net)
        sh(*h, "addr", "add", "198.19.0.1/24", "dev", "up0")
        sh(*h, "link", "set", "up0", "up")
        sh("ip", "netns", "exec", self.host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh(*n, "addr", "add", "198.19.0.2/24", "dev", "up1")
        sh(*n, "link", "set", "up1", "up")
        sh(*n, "link", "set", "lo", "up")
        sh(*n, "route", "add", "198.18.0.0/24", "via", "198.19.0.1")
        for dest in self.destinations:
            sh(*n, "addr", "add", dest + "/32", "dev", "lo")
            sh(*h, "route", "add", dest + "/32", "via", "198.19.0.2")
        for i, (ns, port) in enumerate(zip(self.desks, self.ports), 1):
            sh(*h, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh(*h, "link", "set", port, "master", "sdbr0")
            sh(*h, "link", "set", port, "up")
            sh("ip", "-n", ns, "addr", "add", "198.18.0.%d/24" % (10 + i), "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", "198.18.0.1")

    def close(self):
        for ns in [self.host, self.net] + self.desks:
            sh("ip", "netns", "del", ns, check=False)

    def __exit__(self, *exc):
        self.close()

    def udp_delivery(self, desk_index, dest, count=20, port=9999):
        """How many of ``count`` UDP datagrams sent from desktop ``desk_index`` to ``dest`` arrive there."""
        receiver = subprocess.Popen(
            ["ip", "netns", "exec", self.net, sys.executable, "-c", textwrap.dedent("""
                import socket, sys
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((sys.argv[1], int(sys.argv[2])))
                s.settimeout(2.0)
                print("ready", flush=True)
                n = 0
                try:
                    while True:
                        s.recv(100)
                        n += 1
                except socket.timeout:
                    pass
                print(n, flush=True)
            """), dest, str(port)], stdout=subprocess.PIPE, text=True)
        assert receiver.stdout.readline().strip() == "ready"
        sh("ip", "netns", "exec", self.desks[desk_index], sys.executable, "-c",
           "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
           "for _ in range(int(sys.argv[3])): s.sendto(b'x', (sys.argv[1], int(sys.argv[2])))",
           dest, str(port), str(count))
        out = receiver.communicate(timeout=30)[0]
        return int(out.strip())
