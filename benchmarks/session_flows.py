#!/usr/bin/env python
"""Session-flow benchmark: from a broker's HTTP request to a responsive desktop, through the real EDA stack.

Run on demand, not in CI (needs root and the test bed; roughly 2-3 minutes per round on 2 cores under TCG):

    . scripts/lib.sh; sd_activate; python benchmarks/session_flows.py --rounds 5 --json session_flows.json

One real ``ansible-rulebook`` process runs the collection's sessions rulebook (broker webhook source on loopback,
fast path on, hypervisor events off) for the whole run. Every round prepares four fresh desktops of the same user
(test-bed guest, shadow size 1 vCPU / 256 MiB of 2 vCPUs / 512 MiB) and sends one ``connect`` per path:

  hit     the desktop already runs (the plan warmed it): the webhook only checks it
  paused  a paused shadow: the webhook resumes it
  saved   a managed-saved shadow: the webhook restores it
  cold    a defined desktop without saved state: the webhook boots it

Measured per request, wall clock from sending the HTTP request:
  responsive  until a fresh ``SDSTAT`` line from the guest's serial console (the guest prints one every ~70 ms
              with ``sd_tick=0.05 sd_hb=0``, which bounds the resolution)
  answer      until the webhook's HTTP answer (the fast path's own time is in the answer: ``seconds``)
  full_size   until the guest reports the full vCPU count, hot-plugged by the rulebook's reconnect playbook
JSON: ``{"accel", "rounds", "paths": {path: {"p50", "p95", "n"}}, "full_size": {path: {...}},
"answer": {path: {...}}, "ratio_cold_paused_p50", ...}``; times in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import ShadowSpec

from integration.eda_rulebook import Rulebook
from integration.testbed import (
    BASE_CMDLINE, SDSTAT_RE, SerialConsole, destroy_domain, run_setup, running_accel, unique_name,
)

PATHS = ("hit", "paused", "saved", "cold")
CMDLINE = BASE_CMDLINE + " sd_tick=0.05 sd_hb=0"
FULL_VCPUS = 2  # the desktops' maximum: without a plan, the collection's reconnect flow raises them to it


def quantile(values, q):
    """Linear interpolation between closest ranks (numpy's default); one sample is its own quantile."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values):
    return {"p50": round(quantile(values, 0.5), 4), "p95": round(quantile(values, 0.95), 4), "n": len(values)}


class Bench:
    def __init__(self, tb, user, storage):
        self.tb = tb
        self.user = user
        self.storage = storage
        self.backend = LibvirtBackend({"uri": tb.uri})
        self.names = []

    def desktop(self, path):
        """A fresh desktop in the state of ``path``; returns (name, console)."""
        name = unique_name("sdflow-")
        self.names.append(name)
        tb = self.tb
        self.backend.create(ShadowSpec(
            name=name, user=self.user, source=tb.golden_image, storage=self.storage, network=tb.network,
            boot={"kernel": tb.kernel, "initrd": tb.initrd, "cmdline": CMDLINE},
            machine={"domain_type": tb.domain_type}, max_vcpus=FULL_VCPUS, max_memory_mib=512, shadow_vcpus=1,
            shadow_memory_mib=256))
        dom = self.backend.conn.lookupByName(name)
        console = SerialConsole(_console_path(dom))
        if path != "cold":
            self.backend.start(name)
            console.wait_for("SHADOWDESK-READY", 600)
            console.wait_for(SDSTAT_RE, 60)
            if path == "paused":
                self.backend.pause(name)
                time.sleep(1.0)
            elif path == "saved":
                self.backend.save(name)
        return name, console

    def accel(self, name):
        return running_accel(self.backend.conn.lookupByName(name))

    def destroy(self, name):
        destroy_domain(self.backend.conn, name, (os.path.join(self.storage, "%s.qcow2" % name),))

    def cleanup(self):
        for name in self.names:
            self.destroy(name)
        self.backend.close()


def _console_path(dom):
    import xml.etree.ElementTree as ET  # pylint: disable=import-outside-toplevel

    return ET.fromstring(dom.XMLDesc(0)).find("devices/serial/source").get("path")


def one(rulebook, bench, path):
    name, console = bench.desktop(path)
    try:
        plays_before = rulebook.plays_finished()
        console.mark()
        t0 = time.monotonic()
        status, answer = rulebook.post({"user": bench.user, "action": "connect", "desktop": name})
        answered = time.monotonic() - t0
        if status != 200 or answer.get("path") != path:
            raise RuntimeError("unexpected answer for %s: %s %s\n%s" % (path, status, answer, rulebook.log()))
        console.wait_for(SDSTAT_RE, 300)
        responsive = time.monotonic() - t0
        console.wait_stat(300, cpus=FULL_VCPUS)
        full = time.monotonic() - t0
        accel = bench.accel(name)
        deadline = time.monotonic() + 300  # let the play end before the desktop goes away
        while rulebook.plays_finished() <= plays_before and time.monotonic() < deadline:
            time.sleep(0.2)
        return {"responsive": responsive, "answer": answered, "full_size": full,
                "fast_path_seconds": answer.get("seconds"), "accel": accel}
    finally:
        bench.destroy(name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)

    tb = run_setup()
    storage = os.path.join(tb.images_dir, "desktops")
    bench = Bench(tb, "bench-%s" % unique_name("")[:6], storage)
    samples = {p: [] for p in PATHS}
    accels = set()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sdflow-") as work:
        env = {"SHADOWDESK_BACKEND": "libvirt", "LIBVIRT_DEFAULT_URI": tb.uri,
               "SHADOWDESK_DATA_DIR": os.path.join(work, "data")}
        try:
            with Rulebook(work, env, hypervisor_events=False) as rulebook:
                for r in range(args.rounds):
                    for path in PATHS:
                        res = one(rulebook, bench, path)
                        accels.add(res.pop("accel"))
                        samples[path].append(res)
                        print("round %d/%d %-6s responsive=%.3f answer=%.3f fast_path=%.3f full_size=%.2f"
                              % (r + 1, args.rounds, path, res["responsive"], res["answer"],
                                 res["fast_path_seconds"], res["full_size"]), flush=True)
        finally:
            bench.cleanup()

    result = {
        "accel": ",".join(sorted(accels)),
        "rounds": args.rounds,
        "paths": {p: summary([s["responsive"] for s in samples[p]]) for p in PATHS},
        "answer": {p: summary([s["answer"] for s in samples[p]]) for p in PATHS},
        "fast_path": {p: summary([s["fast_path_seconds"] for s in samples[p]]) for p in PATHS},
        "full_size": {p: summary([s["full_size"] for s in samples[p]]) for p in PATHS},
        "host": {"node": platform.node(), "cpus": os.cpu_count(), "kernel": tb.kernel_version,
                 "loadavg_before": round(load_before, 2), "loadavg_after": round(os.getloadavg()[0], 2)},
    }
    result["ratio_cold_paused_p50"] = round(result["paths"]["cold"]["p50"] / result["paths"]["paused"]["p50"], 1)
    targets = {
        "hit p95 <= 0.3 s": result["paths"]["hit"]["p95"] <= 0.3,
        "paused p95 <= 0.3 s": result["paths"]["paused"]["p95"] <= 0.3,
        "saved p95 <= 1.5 s": result["paths"]["saved"]["p95"] <= 1.5,
        "cold p50 / paused p50 >= 10": result["ratio_cold_paused_p50"] >= 10,
    }
    result["targets_met"] = targets
    print("\nSession flows: %d rounds, accel=%s, %s" % (args.rounds, result["accel"], result["host"]))
    print("%-8s %28s %28s %28s" % ("path", "responsive p50/p95 (n)", "answer p50/p95", "full size p50/p95"))
    for p in PATHS:
        r, a, f = result["paths"][p], result["answer"][p], result["full_size"][p]
        print("%-8s %18.3f / %.3f (%d) %20.3f / %.3f %20.2f / %.2f" % (p, r["p50"], r["p95"], r["n"], a["p50"],
                                                                       a["p95"], f["p50"], f["p95"]))
    print("cold p50 / paused p50 = %.1f" % result["ratio_cold_paused_p50"])
    for label, ok in targets.items():
        print("target %-28s %s" % (label, "met" if ok else "NOT met"))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
