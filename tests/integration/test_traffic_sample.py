"""traffic_sample on a real connection table: two desktops in network namespaces download from a destination behind
the 'host' namespace (the hypervisor, with conntrack and accounting on there); the module, as a real process, turns
that namespace's /proc/net/nf_conntrack into anonymous rows; a second sample counts only the new transfer; the rows
go into the store through traffic_import. Addresses only inside namespaces the test creates (198.18.0.0/15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from integration.module_runner import run_module
from integration.netns import ShadowNet, sh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

DEST = "198.19.1.1"
PAYLOAD = 3_000_000
SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 8443)); s.listen(8); print("ready", flush=True)
    while True:
        c, _ = s.accept(); c.recv(16); c.sendall(b"x" * int(sys.argv[2])); c.close()
""")
CLIENT = textwrap.dedent("""
    import socket, sys
    c = socket.create_connection((sys.argv[1], 8443), timeout=20); c.sendall(b"get"); n = 0
    while True:
        b = c.recv(65536)
        if not b: break
        n += len(b)
    print(n)
""")


def download(net, desk_index):
    out = sh("ip", "netns", "exec", net.desks[desk_index], sys.executable, "-c", CLIENT, DEST).stdout
    assert int(out) == PAYLOAD


def table(net, tmp_path, name):
    path = tmp_path / name
    path.write_text(sh("ip", "netns", "exec", net.host, "cat", "/proc/net/nf_conntrack").stdout)
    return str(path)


def test_samples_are_anonymous_and_count_each_byte_once(tmp_path):
    args = dict(usage_classes={"office": ["198.18.0.0/24"]}, services={"files": ["198.19.1.0/24"]},
                app_classes={"bulk": ["tcp/8443"]}, k=2, accounting=False, state_file=str(tmp_path / "cursor.json"))
    with ShadowNet(desktops=2) as net:
        # conntrack tracks a namespace only while a rule uses it (as libvirt's NAT rules do on a hypervisor)
        sh("ip", "netns", "exec", net.host, "sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1")
        subprocess.run(["ip", "netns", "exec", net.host, "nft", "-f", "-"], check=True, text=True, input=(
            "table inet sdct {\n chain tracked {\n  type filter hook forward priority 0;\n"
            "  ct state established,related counter\n }\n}\n"))
        server = subprocess.Popen(["ip", "netns", "exec", net.net, sys.executable, "-c", SERVER, DEST, str(PAYLOAD)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().strip() == "ready"
            download(net, 0)
            download(net, 1)
            first_table = table(net, tmp_path, "t1")
            first = run_module("traffic_sample", dict(args, table=first_table, now="2026-12-07T09:05:00Z"))
            assert not first.failed, first.get("msg")
            (row,) = first["rows"]
            assert (row["usage_class"], row["app_class"], row["destination"]) == ("office", "bulk", "files")
            assert 2 * PAYLOAD <= row["bytes"] < 2 * PAYLOAD * 1.2  # both downloads, both directions
            assert first["report"]["accounting"] and first["report"]["suppressed_classes"] == 0

            download(net, 0)
            download(net, 1)
            time.sleep(0.2)
            second = run_module("traffic_sample", dict(args, table=table(net, tmp_path, "t2"),
                                                       now="2026-12-07T09:10:00Z"))
            assert not second.failed, second.get("msg")
            assert 2 * PAYLOAD <= second["rows"][0]["bytes"] < 2 * PAYLOAD * 1.2, "a byte was counted twice"

            alone = run_module("traffic_sample", dict(args, table=first_table, k=3, state_file=str(tmp_path / "c2"),
                                                      now="2026-12-07T09:05:00Z"))
            assert alone["rows"] == [] and alone["report"]["suppressed_classes"] == 1  # two desktops < k=3
        finally:
            server.kill()
    cursor = (tmp_path / "cursor.json").read_text()
    shown = json.dumps({k: v for k, v in first.items() if k != "invocation"})  # the arguments hold only the CIDRs
    for secret in ("198.18.0.11", "198.18.0.12", "198.19.1.1"):  # the desktops' and the destination's addresses
        assert secret not in cursor and secret not in shown
    assert oct((tmp_path / "cursor.json").stat().st_mode & 0o777) == "0o600"

    bad = run_module("traffic_sample", dict(args, table=str(tmp_path / "nothing-here")))
    assert bad.failed and "No connection table" in bad["msg"]
