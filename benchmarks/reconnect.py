#!/usr/bin/env python
"""Reconnect benchmark on the real test bed guest (libvirtd + QEMU, Debian kernel + busybox; TCG here).

Run on demand, not in CI (needs root and the test bed; about 25 s per round on 2 cores, TCG):

    . scripts/lib.sh; sd_activate; python benchmarks/reconnect.py [--rounds 5] [--json out.json]

Every round measures three ways of handing a user a desktop that sits at shadow size (1 vCPU, 256 MiB balloon
of 512 MiB max), each followed by the hot-plug to full size (vCPU hot-add + balloon up) until the guest reports it:

  cold     define + start a fresh domain -> SHADOWDESK-READY on the serial console
  saved    a managed-saved shadow: virDomainCreate (restore) -> a fresh SDSTAT line from the guest
  paused   a paused shadow: virDomainResume -> a fresh SDSTAT line from the guest
  hotplug  setVcpusFlags(full, LIVE) + setMemoryFlags(full, LIVE) -> SDSTAT with cpus=full and MemTotal grown by
           the deflated amount (the guest onlines the vCPU itself; the balloon deflates asynchronously)

Times are wall clock from issuing the libvirt call to the matching console line. The guest runs with
``sd_tick=0.05 sd_hb=0`` (a status line every ~70 ms under TCG), which bounds the responsiveness resolution.
The API-call time (restore / resume returned) is reported separately and has no such quantisation.
It uses libvirt directly; it may later switch to the collection's backend.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import libvirt

from integration.testbed import (
    READY_MARKER,
    DomainJanitor,
    parse_sdstat,
    settled_stat,
    run_setup,
    running_accel,
    unique_name,
)

LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
MIB = 1024
CMDLINE = "sd_tick=0.05 sd_hb=0"


def boot_shadow(janitor, args, name):
    """Define + start a shadow-size guest; returns (dom, console, seconds to READY, settled SDSTAT)."""
    dom, con = janitor.define_guest(name, vcpus=args.shadow_vcpus, max_vcpus=args.full_vcpus,
                                    memory_mib=args.full_mib, current_memory_mib=args.shadow_mib,
                                    cmdline_extra=CMDLINE)
    t0 = time.monotonic()
    dom.create()
    con.wait_for(READY_MARKER, 120)
    cold = time.monotonic() - t0
    # settled = the balloon has inflated to the shadow size (guest-reported balloon size == target)
    return dom, con, cold, settled_stat(dom, con, args.shadow_mib * MIB, 120)


def hotplug(dom, con, args, shadow_stat):
    """Hot-plug to full size; seconds until the guest reports both the vCPUs and the grown MemTotal."""
    want_mem = shadow_stat["memtotal_kb"] + (args.full_mib - args.shadow_mib) * MIB - MIB  # 1 MiB slack
    t0 = time.monotonic()
    dom.setVcpusFlags(args.full_vcpus, LIVE)
    dom.setMemoryFlags(args.full_mib * MIB, LIVE)
    while True:
        stat = con.wait_stat(120, cpus=args.full_vcpus)
        if stat["memtotal_kb"] >= want_mem:
            return time.monotonic() - t0


def fresh_stat(con, timeout=60):
    return parse_sdstat(con.wait_for(r"SDSTAT seq=(?P<seq>\d+) cpus=(?P<cpus>\d+) memtotal_kb=(?P<memtotal_kb>\d+) "
                                     r"uptime=(?P<uptime>[\d.]+)", timeout))


def background_load(tb) -> str:
    """Other running domains and the load average: the numbers are only comparable on an otherwise idle host."""
    conn = tb.connect()
    try:
        others = [d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                  if not d.name().startswith("sdbench-")]
    finally:
        conn.close()
    return f"{len(others)} other running domain(s), loadavg {os.getloadavg()[0]:.2f}"


def one_round(janitor, args, r, accel_seen):
    res = {}
    # cold
    dom, con, res["cold_boot"], st = boot_shadow(janitor, args, unique_name(f"sdbench-{r}c-"))
    accel_seen.add(running_accel(dom))
    res["cold_hotplug"] = hotplug(dom, con, args, st)
    dom.destroy()

    # saved shadow (managed save)
    dom, con, res["cold_boot_2"], st = boot_shadow(janitor, args, unique_name(f"sdbench-{r}s-"))
    t0 = time.monotonic()
    dom.managedSave(0)
    res["managed_save"] = time.monotonic() - t0
    con.mark()
    t0 = time.monotonic()
    dom.create()
    res["restore_api"] = time.monotonic() - t0
    after = fresh_stat(con)
    res["restore_responsive"] = time.monotonic() - t0
    assert after["uptime"] >= st["uptime"], "restore cold-booted"
    res["restore_hotplug"] = hotplug(dom, con, args, st)
    dom.destroy()

    # paused shadow
    dom, con, res["cold_boot_3"], st = boot_shadow(janitor, args, unique_name(f"sdbench-{r}p-"))
    dom.suspend()
    time.sleep(args.pause_seconds)
    con.mark()
    t0 = time.monotonic()
    dom.resume()
    res["resume_api"] = time.monotonic() - t0
    fresh_stat(con)
    res["resume_responsive"] = time.monotonic() - t0
    res["resume_hotplug"] = hotplug(dom, con, args, st)
    dom.destroy()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shadow-vcpus", type=int, default=1)
    ap.add_argument("--shadow-mib", type=int, default=256)
    ap.add_argument("--full-vcpus", type=int, default=2)
    ap.add_argument("--full-mib", type=int, default=512)
    ap.add_argument("--pause-seconds", type=float, default=1.0)
    ap.add_argument("--json", help="also write all samples and medians to this file")
    args = ap.parse_args(argv)

    tb = run_setup()
    load_before = background_load(tb)
    accel_seen: set = set()
    rounds = []
    for r in range(args.rounds):
        janitor = DomainJanitor(tb)
        try:
            res = one_round(janitor, args, r, accel_seen)
        finally:
            janitor.cleanup()
        rounds.append(res)
        print(f"round {r + 1}/{args.rounds}: " + " ".join(f"{k}={v:.3f}" for k, v in res.items()), flush=True)

    keys = list(rounds[0])
    med = {k: statistics.median(x[k] for x in rounds) for k in keys}
    cold_all = [x[k] for x in rounds for k in ("cold_boot", "cold_boot_2", "cold_boot_3")]
    med["cold_boot_all"] = statistics.median(cold_all)
    cold_full = med["cold_boot_all"] + med["cold_hotplug"]
    saved_full = med["restore_responsive"] + med["restore_hotplug"]
    paused_full = med["resume_responsive"] + med["resume_hotplug"]
    ratios = {
        "cold/saved (to responsive)": med["cold_boot_all"] / med["restore_responsive"],
        "cold/paused (to responsive)": med["cold_boot_all"] / med["resume_responsive"],
        "cold/saved (to full size)": cold_full / saved_full,
        "cold/paused (to full size)": cold_full / paused_full,
    }
    accel = ",".join(sorted(accel_seen))
    load_after = background_load(tb)
    print(f"\nReconnect benchmark: {args.rounds} rounds, accel={accel}, kernel={tb.kernel_version}, "
          f"host={platform.node()} ({platform.machine()}, {os.cpu_count()} cpus), "
          f"libvirt {libvirt.getVersion() // 1000000}.{libvirt.getVersion() // 1000 % 1000}, "
          f"shadow {args.shadow_vcpus} vCPU/{args.shadow_mib} MiB -> full {args.full_vcpus} vCPU/{args.full_mib} MiB")
    rows = [
        ("cold boot -> READY (all boots)", med["cold_boot_all"]),
        ("cold: hot-plug to full", med["cold_hotplug"]),
        ("managedSave (make saved shadow)", med["managed_save"]),
        ("saved: restore API call", med["restore_api"]),
        ("saved: restore -> responsive", med["restore_responsive"]),
        ("saved: hot-plug to full", med["restore_hotplug"]),
        ("paused: resume API call", med["resume_api"]),
        ("paused: resume -> responsive", med["resume_responsive"]),
        ("paused: hot-plug to full", med["resume_hotplug"]),
        ("cold total to full size", cold_full),
        ("saved total to full size", saved_full),
        ("paused total to full size", paused_full),
    ]
    print(f"background: before {load_before}; after {load_after}")
    print(f"{'median':<34} {'seconds':>8}")
    for label, v in rows:
        print(f"{label:<34} {v:8.3f}")
    for label, v in ratios.items():
        print(f"ratio {label:<28} {v:8.1f}x")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"rounds": rounds, "medians": med, "ratios": ratios, "accel": accel,
             "background": {"before": load_before, "after": load_after},
             "kernel": tb.kernel_version, "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
