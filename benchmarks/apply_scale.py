#!/usr/bin/env python
"""Apply scale benchmark: one tick of ``playbooks/apply_plans.yml`` for a plan of N desktops, N/3 of them due.

    python benchmarks/apply_scale.py --desktops 1000 --backend libvirt-test --json out.json
    python benchmarks/apply_scale.py --desktops 1000 --backend proxmox --json out.json

Backends:
- ``libvirt-test``: libvirt's ``test:///`` driver defined from a node file with N saved shadow desktops
  (tests/stand_ins/libvirt_test_node.py); its state lives for one connection, i.e. for the one plan_apply call.
- ``proxmox``: the PVE stand-in (tests/stand_ins/pve_api_server.py, real HTTPS on loopback, every request checked
  against PVE's schema) with N shadow VMs (hibernated, full size 4 vCPUs / 8 GiB, shadow 1 / 2 GiB) on 3 nodes;
  tasks take --task-duration seconds (default 0.1).

The plan (schema-valid, version 1) gives every user a wake step; for every third user it fell due 5 minutes before
the injected clock (``running`` at the ``full`` stage: restore + vCPU hot-add + balloon), for the others it is an
hour later. ``wall_s`` is the wall time of the whole ``ansible-playbook`` process (start-up, plan validation, the
due computation, the batched apply, the report). Prints and writes
``{"desktops", "due", "applied", "failed", "wall_s"}`` plus context fields.
"""

import argparse
import datetime as dt
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

NOW = dt.datetime(2026, 11, 23, 7, 30, tzinfo=dt.timezone.utc)
STAGES = {"shadow": {"vcpus": 1, "memory_mib": 2048}, "warm": {"vcpus": 2, "memory_mib": 4096},
          "full": {"vcpus": 4, "memory_mib": 8192}}
NODES = ("pve1", "pve2", "pve3")


# A callback that writes the per-desktop records of every plan_apply result (loop items included) to $SD_RECORDS.
RECORDER = """
import json, os
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "plan_apply_records"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.records = []

    def _keep(self, result):
        self.records.extend(result._result.get("desktops") or [])

    v2_runner_item_on_ok = v2_runner_item_on_failed = v2_runner_on_ok = v2_runner_on_failed = _keep

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["SD_RECORDS"], "w") as handle:
            json.dump(self.records, handle)
"""


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def desktop(i):
    return "desk-%04d" % i, "user%04d" % i


def plan(count, nodes):
    users = {}
    for i in range(count):
        name, user = desktop(i)
        due = i % 3 == 0
        at = NOW - dt.timedelta(minutes=5) if due else NOW + dt.timedelta(hours=1)
        users[user] = {"desktop": name, "node": nodes[i % len(nodes)], "method": "prophet",
                       "predicted_login": iso(at + dt.timedelta(minutes=20)), "lead_minutes": 20,
                       "stages": STAGES, "steps": [{"at": iso(at), "state": "running", "stage": "full"}]}
    return {"version": 1, "generated_at": iso(NOW - dt.timedelta(hours=10)),
            "window": {"start": iso(NOW - dt.timedelta(hours=1)), "end": iso(NOW + dt.timedelta(hours=24))},
            "risk": 0.3, "users": users}


def libvirt_connection(count, workdir):
    uri = write_node(workdir / "node.xml", [dict(zip(("name", "user"), desktop(i)), state="saved")
                                            for i in range(count)])
    return {"backend": "libvirt", "uri": uri}, ("localhost",), None


def proxmox_connection(count, workdir, task_duration):
    from stand_ins.pve_api_server import PveStandIn
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_config as pc
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import ShadowSpec

    pve = PveStandIn(nodes=NODES, node_cpus=4096, node_memory_gib=16384, task_duration=task_duration).start()
    for i in range(count):
        name, user = desktop(i)
        spec = ShadowSpec(name=name, user=user, source="9000", max_vcpus=4, max_memory_mib=8192)
        config = pc.shadow_config(spec, {}, iso(NOW))
        config["vmstate"] = "local-lvm:vm-%d-state-suspend" % (1000 + i)   # hibernated: a saved shadow
        config["lock"] = "suspended"
        pve.add_vm(NODES[i % 3], 1000 + i, name, **config)
    connection = {"backend": "proxmox", "api_host": pve.host, "api_port": pve.port, "api_user": pve.token_user,
                  "api_token_id": pve.token_name, "api_token_secret": pve.token_value, "ca_path": pve.ca_path}
    return connection, NODES, pve


def run(args):
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="sd-apply-scale-"))
    data_dir = workdir / "data"
    (data_dir / "plans").mkdir(parents=True)
    pve = None
    if args.backend == "libvirt-test":
        connection, nodes, pve = libvirt_connection(args.desktops, workdir)
    else:
        connection, nodes, pve = proxmox_connection(args.desktops, workdir, args.task_duration)
    try:
        (data_dir / "plans" / "latest.json").write_text(json.dumps(plan(args.desktops, nodes)))
        extra = {"shadowdesk_now": iso(NOW), "shadowdesk_data_dir": str(data_dir),
                 "shadowdesk_connection": connection, "shadowdesk_apply_workers": args.workers}
        (workdir / "vars.json").write_text(json.dumps(extra))
        (workdir / "callbacks").mkdir()
        (workdir / "callbacks" / "plan_apply_records.py").write_text(RECORDER)
        env = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=str(workdir / "callbacks"),
                   ANSIBLE_CALLBACKS_ENABLED="plan_apply_records", SD_RECORDS=str(workdir / "records.json"),
                   ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
                   SHADOWDESK_DATA_DIR=str(data_dir))
        playbook = pathlib.Path(sys.executable).parent / "ansible-playbook"
        started = time.monotonic()
        proc = subprocess.run([str(playbook), "shadowdesk.vdi.apply_plans", "-e", "@%s" % (workdir / "vars.json")],
                              capture_output=True, text=True, env=env, check=False)
        wall = time.monotonic() - started
    finally:
        if pve is not None:
            pve.stop()
    records_file = workdir / "records.json"
    records = json.loads(records_file.read_text()) if records_file.exists() else []
    if proc.returncode != 0 and not records:
        sys.exit("apply_plans.yml failed (rc=%s):\n%s\n%s" % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return {"desktops": args.desktops, "due": len(records),
            "applied": len([r for r in records if r["changed"] and not r["failed"]]),
            "failed": len([r for r in records if r["failed"]]), "wall_s": round(wall, 2),
            "backend": args.backend, "workers": args.workers, "playbook_rc": proc.returncode,
            "task_duration_s": args.task_duration if args.backend == "proxmox" else None,
            "cpus": os.cpu_count(), "python": platform.python_version()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--desktops", type=int, default=300)
    parser.add_argument("--backend", choices=["libvirt-test", "proxmox"], default="libvirt-test")
    parser.add_argument("--json", help="write the result here too")
    parser.add_argument("--workers", type=int, default=16, help="plan_apply workers (apply_plan_workers)")
    parser.add_argument("--task-duration", type=float, default=0.1, help="PVE stand-in task duration (s)")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        pathlib.Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
