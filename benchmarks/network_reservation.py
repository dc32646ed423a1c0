# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bandwidth reservation as a desktop user feels it, and what the block lets through.

    python benchmarks/network_reservation.py --json OUT [--desktops 6] [--bottleneck-mbit 30]
        [--reserved-mbit 10] [--seconds 8]

Builds, in network namespaces it creates and deletes (``ShadowNet`` of tests/integration/netns.py) (addresses 198.18.0.0/15 only, no traffic leaves them):

    desktop i (sdt-d<i>-*)  eth0 198.18.0.1x ──veth── vd<i> ┐
                                                            ├ bridge sdbr0 198.18.0.1 (host ns) ── up0 ── up1 (net ns)
                                                           ┘  predicted destination 198.19.1.1, bulk 198.19.2.1, blocked 198.19.3.1

Every desktop downloads bulk data from 198.19.2.1; desktop 1 also downloads from the predicted destination (the
surge). The shared bottleneck is the shadow bridge (HTB at ``--bottleneck-mbit``, the host side of all desktops'
secondary interfaces); each desktop interface is limited to the same rate. "With reservation" applies the
product's own shaping (``_netshadow/shaping.py``) with the predicted destination reserved at ``--reserved-mbit``
on the bridge and on every desktop interface; "without" applies the same trees with no reservation. Measured per
run: the surge's throughput, the others' bulk throughput, and the time to connect + first byte to the predicted
destination (median of 10, while the bulk runs). Then the product's block (``_netshadow/blocking.py``, FireHOL
list + the blocked destination) is put on every desktop interface and each desktop sends 200 UDP datagrams and 20
TCP connection attempts to 198.19.3.1, whose listener counts what arrives. Writes::

    {"reserved_mbit", "with_reservation_mbit", "without_reservation_mbit", "blocked_packets_leaked", ...}
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

PREDICTED, BULK, BLOCKED = "198.19.1.1", "198.19.2.1", "198.19.3.1"
PORT = 5201
CHUNK = b"x" * 65536


# ---- traffic roles, run inside the namespaces as "python network_reservation.py --role ..." ----

def serve(count_path, addresses):
    """Bulk sender on PORT of each address: a client line 'bulk' gets data until it closes; 'ping' gets one byte."""
    def handle(conn):
        try:
            cmd = conn.recv(16)
            if cmd.startswith(b"ping"):
                conn.sendall(b"!")
            else:
                while True:
                    conn.sendall(CHUNK)
        except OSError:
            pass
        finally:
            conn.close()

    def listen(addr):
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((addr, PORT))
        srv.listen(64)
        while True:
            conn, _peer = srv.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    for addr in addresses:
        threading.Thread(target=listen, args=(addr,), daemon=True).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((BLOCKED, PORT))
    tcp_blocked = socket.socket()
    tcp_blocked.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp_blocked.bind((BLOCKED, PORT + 1))
    tcp_blocked.listen(64)
    counts = {"udp": 0, "tcp": 0}

    def count_tcp():
        while True:
            conn, _peer = tcp_blocked.accept()
            counts["tcp"] += 1
            conn.close()
    threading.Thread(target=count_tcp, daemon=True).start()
    udp.settimeout(0.2)
    print("ready", flush=True)
    while True:
        try:
            udp.recv(2048)
            counts["udp"] += 1
        except socket.timeout:
            pass
        with open(count_path + ".tmp", "w") as fh:
            json.dump(counts, fh)
        os.replace(count_path + ".tmp", count_path)


def fetch(addr, seconds):
    """Download from addr for ``seconds``; print Mbit/s over the last ``seconds - 1`` (first second is ramp-up)."""
    sock = socket.create_connection((addr, PORT), timeout=5)
    sock.sendall(b"bulk\n")
    start = time.monotonic()
    counted, t0 = 0, None
    while time.monotonic() - start < seconds:
        data = sock.recv(262144)
        if not data:
            break
        if time.monotonic() - start >= 1.0:
            if t0 is None:
                t0 = time.monotonic()
            else:
                counted += len(data)
    sock.close()
    elapsed = time.monotonic() - (t0 or start)
    print(json.dumps({"mbit": counted * 8 / elapsed / 1e6 if elapsed > 0 else 0.0}), flush=True)


def pings(addr, count, delay):
    """Connect + first byte times (ms) to addr, ``count`` times, starting after ``delay`` seconds."""
    time.sleep(delay)
    times = []
    for _n in range(count):
        t = time.monotonic()
        try:
            sock = socket.create_connection((addr, PORT), timeout=10)
            sock.sendall(b"ping\n")
            sock.recv(1)
            times.append((time.monotonic() - t) * 1000)
            sock.close()
        except OSError:
            times.append(10000.0)
        time.sleep(0.2)
    print(json.dumps({"ms": times}), flush=True)


def send_blocked(count):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    for _n in range(count):
        try:
            udp.sendto(b"blocked?", (BLOCKED, PORT))
            sent += 1
        except OSError:
            pass
    for _n in range(20):
        try:
            socket.create_connection((BLOCKED, PORT + 1), timeout=0.3).close()
        except OSError:
            pass
    print(json.dumps({"udp_sent": sent, "tcp_attempts": 20}), flush=True)


# ---- topology: the same namespaces as the host-side integration tests (tests/integration/netns.py) ----

def role(ns, *args):
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--role"]
                            + [str(a) for a in args], stdout=subprocess.PIPE, text=True)


def one_run(topo, runner_for, reservations, args):
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow import shaping
    hv = runner_for(topo.host)
    shaping.apply(hv, "sdbr0", args.bottleneck_mbit, reservations)
    for port in topo.ports:
        shaping.apply(hv, port, args.bottleneck_mbit, reservations)
    bulk = [role(ns, "fetch", BULK, args.seconds + 2) for ns in topo.desks]
    time.sleep(1.0)
    surge = role(topo.desks[0], "fetch", PREDICTED, args.seconds)
    ping = role(topo.desks[-1], "pings", PREDICTED, 10, 1.5)
    surge_mbit = json.loads(surge.communicate()[0])["mbit"]
    ping_ms = json.loads(ping.communicate()[0])["ms"]
    bulk_mbit = [json.loads(p.communicate()[0])["mbit"] for p in bulk]
    return {"surge_mbit": round(surge_mbit, 2), "others_bulk_mbit": round(sum(bulk_mbit[1:]), 2),
            "all_bulk_mbit": round(sum(bulk_mbit), 2), "connect_first_byte_ms_median": round(statistics.median(ping_ms), 1),
            "connect_first_byte_ms": [round(x, 1) for x in ping_ms]}


def blocked_leak(topo, runner_for):
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import blocklist
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow import blocking
    netset = os.path.join(os.path.dirname(ROOT), "shared", "data", "network", "firehol_level1_2021-06-28.netset")
    sources = [("benchmark: blocked destination", [blocklist.parse_network(BLOCKED)], False)]
    if os.path.exists(netset):
        with open(netset) as fh:
            sources.insert(0, ("blocklist:firehol_level1", blocklist.parse_netset(fh.read(), "firehol_level1")))
    entries = blocklist.block_entries(sources)
    hv = runner_for(topo.host)
    for i, port in enumerate(topo.ports):
        blocking.apply(hv, "bench-desk-%d" % i, [port], entries)
    sent = 0
    for ns in topo.desks:
        out = role(ns, "send_blocked", 200).communicate()[0]
        sent += json.loads(out)["udp_sent"]
    time.sleep(0.5)
    dropped = sum(blocking.read(hv, "bench-desk-%d" % i)["dropped"]["packets"] for i in range(len(topo.ports)))
    return sent, dropped, len(entries)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--json")
    ap.add_argument("--desktops", type=int, default=6)
    ap.add_argument("--bottleneck-mbit", type=float, default=30.0)
    ap.add_argument("--reserved-mbit", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--role", nargs="+")
    args = ap.parse_args(argv)
    if args.role:
        name, rest = args.role[0], args.role[1:]
        if name == "serve":
            serve(rest[0], rest[1:])
        elif name == "fetch":
            fetch(rest[0], float(rest[1]))
        elif name == "pings":
            pings(rest[0], int(rest[1]), float(rest[2]))
        elif name == "send_blocked":
            send_blocked(int(rest[0]))
        return
    if not args.json:
        ap.error("--json is required")
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow import features
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow.runner import HostRunner
    found = features.probe()
    features.require(found, ["shaping towards the desktop", "shaping what leaves the desktop", "blocking"])
    from integration.netns import ShadowNet
    server = None
    count_path = "/tmp/sdbn-blocked-count.%d" % os.getpid()
    with ShadowNet(desktops=args.desktops, destinations=(PREDICTED, BULK, BLOCKED)) as topo:
        try:
            server = role(topo.net, "serve", count_path, PREDICTED, BULK)
            server.stdout.readline()
            reservation = [{"name": "predicted", "cidrs": [PREDICTED + "/32"], "rate_mbit": args.reserved_mbit}]
            without = one_run(topo, lambda ns: HostRunner(netns=ns), [], args)
            print("without reservation:", json.dumps(without), flush=True)
            with_res = one_run(topo, lambda ns: HostRunner(netns=ns), reservation, args)
            print("with reservation:", json.dumps(with_res), flush=True)
            sent, dropped, entries = blocked_leak(topo, lambda ns: HostRunner(netns=ns))
            time.sleep(0.5)
            with open(count_path) as fh:
                arrived = json.load(fh)
        finally:
            if server:
                server.kill()
            if os.path.exists(count_path):
                os.unlink(count_path)
    out = {
        "reserved_mbit": args.reserved_mbit,
        "with_reservation_mbit": with_res["surge_mbit"],
        "without_reservation_mbit": without["surge_mbit"],
        "blocked_packets_leaked": arrived["udp"] + arrived["tcp"],
        "share_of_reserved": round(with_res["surge_mbit"] / args.reserved_mbit, 3),
        "connect_first_byte_ms": {"with": with_res["connect_first_byte_ms_median"],
                                  "without": without["connect_first_byte_ms_median"]},
        "others_bulk_mbit": {"with": with_res["others_bulk_mbit"], "without": without["others_bulk_mbit"]},
        "runs": {"with": with_res, "without": without},
        "blocking": {"udp_sent": sent, "tcp_attempts": 20 * args.desktops, "dropped_by_counters": dropped,
                     "block_entries": entries, "arrived": arrived},
        "setup": {"desktops": args.desktops, "bottleneck_mbit": args.bottleneck_mbit, "seconds": args.seconds,
                  "kernel_missing": found["missing"]},
    }
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
