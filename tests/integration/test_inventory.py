"""The shadowdesk.vdi.desktops inventory plugin through real ansible-inventory processes: against the real
libvirtd of the test bed and against the PVE stand-in (one /cluster/resources request for the whole cluster)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from integration.desks import LibvirtDesk, ProxmoxDesk
from integration.module_runner import run_module

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_config as pc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import ShadowSpec

INVENTORY = pathlib.Path(sys.executable).parent / "ansible-inventory"
NOW = "2026-11-23T07:30:00Z"


def inventory(path, *args, env=None):
    run_env = dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="true", **(env or {}))
    proc = subprocess.run([str(INVENTORY), "-i", str(path), *args], capture_output=True, text=True, env=run_env,
                          timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def write_source(tmp_path, hypervisors, filename="pool.desktops.yml", **extra):
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(dict(plugin="shadowdesk.vdi.desktops", hypervisors=hypervisors, **extra)))
    return path


def plan_file(tmp_path, desktops):
    """A plan in which every desktop's user is warm at NOW."""
    stage = {"vcpus": 1, "memory_mib": 256}
    users = {user: {"desktop": desktop, "node": "n1", "method": "prophet", "predicted_login": NOW,
                    "lead_minutes": 10, "stages": {"shadow": stage, "warm": stage, "full": stage},
                    "steps": [{"at": "2026-11-23T07:00:00Z", "state": "running", "stage": "warm"}]}
             for desktop, user in desktops.items()}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"version": 1, "generated_at": "2026-11-22T21:00:00Z", "risk": 0.3,
                                "window": {"start": "2026-11-23T00:00:00Z", "end": "2026-11-24T00:00:00Z"},
                                "users": users}))
    return path


@pytest.mark.libvirt
def test_libvirt_host_groups_vars_constructed_options_and_cache(libvirt_testbed, tmp_path):
    desk = LibvirtDesk(libvirt_testbed)
    try:
        name = desk.new_name()
        result = run_module("shadow_vm", dict(desk.create_args(name, "inv-alice"), state="present"))
        assert not result.failed, result.get("msg")
        cache_dir = tmp_path / "cache"
        source = write_source(
            tmp_path, [{"backend": "libvirt", "uri": libvirt_testbed.uri, "name": "lab"}],
            plan_file=str(plan_file(tmp_path, {name: "inv-alice"})), now=NOW,
            keyed_groups=[{"key": "shadowdesk_stage | default('none', true)", "prefix": "stage"}],
            groups={"sized_for_plan": "shadowdesk_size.max_vcpus >= 4"},
            compose={"desk_label": "shadowdesk_user ~ '@' ~ shadowdesk_hypervisor"},
            cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache_dir),
            cache_timeout=3600)
        rc, graph, err = inventory(source, "--graph")
        assert rc == 0, err
        for group in ("@user_inv_alice:", "@state_shutoff:", "@stage_warm:", "@sized_for_plan:"):
            assert group in graph and name in graph.split(group, 1)[1].split("@", 1)[0], (group, graph)
        rc, out, err = inventory(source, "--host", name)
        hostvars = json.loads(out)
        assert hostvars["shadowdesk_user"] == "inv-alice" and hostvars["shadowdesk_stage"] == "warm"
        assert hostvars["shadowdesk_planned_state"] == "running" and hostvars["desk_label"] == "inv-alice@lab"
        assert hostvars["shadowdesk_size"] == {"vcpus": 1, "memory_mib": 256, "max_vcpus": 4,
                                               "max_memory_mib": 512}

        # strict: a compose that fails fails the inventory (while the desktop exists, so a host is composed)
        strict = write_source(tmp_path, [{"backend": "libvirt", "uri": libvirt_testbed.uri}], strict=True,
                              filename="strict.desktops.yml", compose={"broken": "shadowdesk_no_such_var + 1"})
        rc, _out, err = inventory(strict, "--graph")
        assert rc != 0 and "shadowdesk_no_such_var" in err

        # the cached inventory is used while it is valid: the desktop is gone from libvirt but still listed
        assert not run_module("shadow_vm", dict(desk.connection, name=name, state="absent")).failed
        rc, graph, err = inventory(source, "--graph")
        assert rc == 0 and name in graph
        rc, graph, err = inventory(source, "--graph", "--flush-cache")
        assert rc == 0 and name not in graph
    finally:
        desk.cleanup()


@pytest.mark.pve
def test_proxmox_cluster_in_one_request_and_a_down_cluster_fails_fast(pve_stand_in, tmp_path):
    pve = pve_stand_in
    desk = ProxmoxDesk(pve)  # adds the template, which is not a desktop
    for vmid, (name, user, node) in enumerate((("desk-ann", "ann", "pve1"), ("desk-ben", "ben", "pve2"),
                                               ("desk-cy", "ann", "pve2")), start=300):
        spec = ShadowSpec(name=name, user=user, source="9000", max_vcpus=4, max_memory_mib=4096)
        pve.add_vm(node, vmid, name, status="running" if user == "ben" else "stopped",
                   **pc.shadow_config(spec, {}, NOW))
    pve.add_vm("pve1", 399, "not-a-desktop")
    connection = desk.connection
    hypervisor = {"backend": "proxmox", "name": "cluster-a", "api_host": pve.host, "api_port": pve.port,
                  "api_user": pve.token_user, "api_token_id": pve.token_name, "ca_path": pve.ca_path}
    source = write_source(tmp_path, [hypervisor])
    secret = {"PROXMOX_TOKEN_SECRET": connection["api_token_secret"]}   # from the environment, as AWX injects it
    before = len(pve.requests())
    rc, graph, err = inventory(source, "--graph", env=secret)
    assert rc == 0, err
    assert [r["path"] for r in pve.requests()[before:]] == ["/cluster/resources"]
    hosts = {line.strip(" |-") for line in graph.splitlines() if not line.strip(" |-").startswith("@")}
    assert hosts == {"desk-ann", "desk-ben", "desk-cy"}
    assert "@user_ann:\n  |  |--desk-ann\n  |  |--desk-cy" in graph
    assert "@node_pve2:" in graph and "@state_running:\n  |  |--desk-ben" in graph
    rc, out, _err = inventory(source, "--host", "desk-ben", env=secret)
    assert json.loads(out)["shadowdesk_size"]["max_memory_mib"] == 4096

    down = write_source(tmp_path, [dict(hypervisor, api_port=1)])
    rc, _out, err = inventory(down, "--graph", env=secret)
    assert rc != 0 and "cannot read hypervisor cluster-a" in err and "Cannot reach Proxmox VE" in err
    assert connection["api_token_secret"] not in err
