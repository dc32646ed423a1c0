#!/usr/bin/env python
"""Autoscale round scale: one ``shadowdesk.vdi.autoscale`` round (the module, as a real process) over N running
desktops of libvirt's ``test:///`` driver, in check mode.

    python benchmarks/autoscale_round_scale.py --desktops 20 --interval 1.0 --json out.json

The round measures every running desktop's CPU over ``--interval`` seconds. ``wall_s`` is the module process's
wall time (start-up, listing, measuring, deciding); ``decided`` counts desktops the policy decided on (not
skipped), ``failed`` those whose round failed. A minutely schedule needs ``wall_s`` well under 60 s. Check mode,
because the test driver cannot apply a CPU quota; deciding and measuring are the same as in a real round.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stand_ins.libvirt_test_node import write_node  # noqa: E402  (tests/ on the path above)


def one_round(count, interval, workdir):
    uri = write_node(workdir / "node.xml", [dict(name="desk-%04d" % i, user="user%04d" % i, state="running")
                                            for i in range(count)])
    args = {"ANSIBLE_MODULE_ARGS": {"_ansible_check_mode": True, "backend": "libvirt", "uri": uri,
                                    "interval": interval, "keep_state": False,
                                    "host": {"cpu_overcommit": 64.0, "memory_reserve_mib": 0.0}}}
    (workdir / "args.json").write_text(json.dumps(args))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.shadowdesk.vdi.plugins.modules.autoscale",
                           str(workdir / "args.json")], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=str(ROOT / ".build" / "collections")))
    wall = time.monotonic() - started
    result = json.loads(proc.stdout)
    return {"desktops": count, "interval": interval, "wall_s": round(wall, 2),
            "decided": sum(1 for d in result.get("desktops", []) if not d.get("skipped")),
            "failed": len(result.get("failed_desktops", [])), "msg": result.get("msg", "")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--desktops", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--json")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = one_round(opts.desktops, opts.interval, pathlib.Path(tmp))
    out.update(python=platform.python_version(), load_average=[round(v, 2) for v in os.getloadavg()])
    print(json.dumps(out))
    if opts.json:
        pathlib.Path(opts.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
