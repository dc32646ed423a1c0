"""playbooks/autoscale.yml in real ansible-playbook runs on a real libvirtd/QEMU guest: the policy's memory lives in
the history store between runs (the low-readings counter of run 1 lets run 2 come down), ``--check`` changes
neither the desktop nor the store, and a rerun on an unchanged, idle desktop changes nothing. Then the autoscale
action's own options on the Proxmox VE stand-in (``keep_state``, check mode on a fresh data directory), and the
state in a shared PostgreSQL store (as under AWX), the plan's current stage as the floor, and a hypervisor that
fails without stopping the others (libvirt's test driver).

One guest, idle after its boot: every round measures it for real (no injected readings). The policy recommends
only from 6 readings on, so the store is seeded with the CPU history of a mostly idle desktop (as earlier
minutely runs would have left it); the runs of this test add to it.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import time

import pytest

from integration.desks import LibvirtDesk, ProxmoxDesk
from integration.flows import run_playbook
from integration.module_runner import run_module
from integration.test_allocation_plan_action import run_playbook as run_tasks
from integration.test_autoscale_live import create_args, idle_history, reading
from integration.test_store_postgresql import pg  # noqa: F401  # pylint: disable=unused-import

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._autoscale_store import hypervisor_key
from ansible_collections.shadowdesk.vdi.tests.postgres_server import TEST_PASSWORD
from ansible_collections.shadowdesk.vdi.tests.stand_ins.libvirt_test_node import write_node

pytestmark = pytest.mark.playbook

GONE = "sdtest-removed-long-ago"


@pytest.fixture
def libvirt_desk(libvirt_testbed):
    face = LibvirtDesk(libvirt_testbed)
    yield face
    face.cleanup()


def autoscale_vars(desk, data_dir, name):
    # Only this test's guest: other guests on the shared libvirtd belong to other tests.
    return {"shadowdesk_data_dir": str(data_dir), "shadowdesk_connection": desk.connection,
            "shadowdesk_autoscale_desktops": [name], "shadowdesk_autoscale_interval": 2.0,
            "shadowdesk_autoscale_bounds": {"cpu": {"min": 0.2}, "memory_mib": {"min": 192}},
            "shadowdesk_autoscale_policy": {"memory_margin_mib": 48},
            "shadowdesk_autoscale_host": {"cpu_overcommit": 64.0, "memory_reserve_mib": 256}}


def stored_rows(data_dir):
    with sqlite3.connect(str(data_dir / "history.sqlite3")) as db:
        return db.execute("SELECT hypervisor, desktop, state, updated_utc FROM autoscale_state "
                          "ORDER BY hypervisor, desktop").fetchall()


def cpu_state(data_dir, key, name):
    with HistoryStore(str(data_dir / "history.sqlite3"), read_only=True) as store:
        return store.autoscale_states(key)[name]["resources"]["cpu"]


def live(desk, name):
    result = run_module("desktop_info", dict(desk.connection, name=name))
    assert not result.failed, result.get("msg")
    return result["desktops"][0]["live"]


@pytest.mark.libvirt
def test_the_policy_state_is_kept_in_the_store_between_runs_and_check_mode_writes_nothing(libvirt_desk, tmp_path):
    desk = libvirt_desk
    name = desk.new_name()
    created = run_module("shadow_vm", dict(create_args(desk, name, "alice"), state="running"))
    assert not created.failed, created.get("msg")
    desk.wait_booted(name, timeout=300)
    data_dir = tmp_path / "data"
    key = hypervisor_key(desk.connection, "localhost")
    with HistoryStore(str(data_dir / "history.sqlite3")) as store:  # and a desktop this hypervisor no longer has
        store.save_autoscale_states(key, {name: idle_history(time.time()), GONE: {"version": 1, "resources": {}}})
        store.save_autoscale_states("another hypervisor", {GONE: {"version": 1, "resources": {}}})
    extra = autoscale_vars(desk, data_dir, name)

    # Run 1 reads the stored history: an idle desktop at 1 vCPU is low once; coming down needs 2 low readings in a
    # row (hysteresis). Without the stored history it would say "too little history".
    first = run_playbook("autoscale", tmp_path, extra).ok()
    assert "cpu hold" in first.stdout and "low (1 of 2" in first.stdout, first.stdout[-3000:]
    assert [r[:2] for r in stored_rows(data_dir)] == [("another hypervisor", GONE), (key, name)], \
        "the removed desktop's state is dropped, another hypervisor's is not touched"
    assert cpu_state(data_dir, key, name)["low_count"] == 1
    assert live(desk, name)["vcpus"] == 1 and not live(desk, name)["cpu_limit"]

    # --check: decides on the stored counter (the second low reading: down), changes nothing, stores nothing.
    rows, fingerprint = stored_rows(data_dir), desk.state_fingerprint()
    preview = run_playbook("autoscale", tmp_path, extra, check=True).ok()
    assert "cpu down 1.0 -> " in preview.stdout, preview.stdout[-3000:]
    assert stored_rows(data_dir) == rows, "check mode wrote to the store"
    assert desk.state_fingerprint() == fingerprint, "check mode changed the desktop"

    # Run 2 reads run 1's counter from the store: the second low reading in a row brings the CPU down (a quota).
    second = run_playbook("autoscale", tmp_path, extra).ok()
    assert "cpu down 1.0 -> " in second.stdout and second.changed >= 1, second.stdout[-3000:]
    facts = live(desk, name)
    assert facts["vcpus"] == 1 and 0 < facts["cpu_limit"] < 1, "a quota, never an unplug"
    state = cpu_state(data_dir, key, name)
    assert state["low_count"] == 0 and state["last_change_at"] is not None

    # A rerun on the same idle desktop: the quota holds (hysteresis, cooldown), nothing changes.
    again = run_playbook("autoscale", tmp_path, extra).ok()
    assert again.changed == 0 and "cpu hold" in again.stdout, again.stdout[-3000:]
    assert live(desk, name)["cpu_limit"] == facts["cpu_limit"]


def running_pve_desktop(pve_stand_in, user):
    desk = ProxmoxDesk(pve_stand_in)
    name = desk.new_name()
    created = run_module("shadow_vm", dict(desk.create_args(name, user), state="running"))
    assert not created.failed, created.get("msg")
    return desk, name


def round_task(desk, data_dir, name, **extra):
    args = dict(desk.connection, data_dir=str(data_dir), desktops=[name],
                metrics={name: reading(time.time(), 100.0, 1, used_mib=100, total_mib=256)})
    args.update(extra)
    return {"name": "round", "shadowdesk.vdi.autoscale": args, "register": "round"}


@pytest.mark.pve
def test_the_action_keeps_the_state_unless_told_and_check_mode_creates_no_store(pve_stand_in, tmp_path):
    desk, name = running_pve_desktop(pve_stand_in, "erin")
    data_dir = tmp_path / "data"

    rc, results, log = run_tasks(tmp_path, [round_task(desk, data_dir, name)], check=True)
    assert rc == 0, log
    assert results[0]["stored_state"]["note"].startswith("check mode") and "cpu" in str(results[0]["desktops"])
    assert not data_dir.exists(), "check mode created the store"

    rc, results, log = run_tasks(tmp_path, [round_task(desk, data_dir, name, keep_state=False)])
    assert rc == 0, log
    assert name in results[0]["policy_state"] and "stored_state" not in results[0]
    assert not data_dir.exists(), "keep_state=false touched the store"

    rc, results, log = run_tasks(tmp_path, [round_task(desk, data_dir, name, policy_state={name: {}})])
    assert rc != 0 and "set keep_state: false" in results[0]["msg"], log
    rc, results, log = run_tasks(tmp_path, [round_task(desk, data_dir, name, keep_state="sometimes")])
    assert rc != 0 and "keep_state" in results[0]["msg"] and "Traceback" not in log, log

    rc, results, log = run_tasks(tmp_path, [round_task(desk, data_dir, name)])
    assert rc == 0, log
    key = "proxmox %s:%s" % (pve_stand_in.host, pve_stand_in.port)
    assert results[0]["stored_state"]["key"] == key and results[0]["stored_state"]["saved"] == [name]
    assert "policy_state" not in results[0], "the state is in the store, not in every job's output"
    with HistoryStore(str(data_dir / "history.sqlite3"), read_only=True) as store:
        assert list(store.autoscale_states(key)) == [name]


@pytest.mark.pve
def test_the_state_lives_in_a_shared_postgresql_store_as_under_awx(pve_stand_in, pg, tmp_path, monkeypatch):  # noqa: F811
    desk, name = running_pve_desktop(pve_stand_in, "frank")
    pg.create_database("sd_autoscale", "shadowdesk", TEST_PASSWORD)
    url = pg.url("sd_autoscale", "shadowdesk")
    # As an AWX credential injects them: the URL without the password, the password apart.
    monkeypatch.setenv("SHADOWDESK_HISTORY_URL", url)
    monkeypatch.setenv("SHADOWDESK_HISTORY_PASSWORD", TEST_PASSWORD)
    data_dir = tmp_path / "data"
    key = "proxmox %s:%s" % (pve_stand_in.host, pve_stand_in.port)

    rc, results, log = run_tasks(tmp_path, [round_task(desk, data_dir, name)])
    assert rc == 0, log
    assert results[0]["stored_state"]["saved"] == [name] and TEST_PASSWORD not in log
    assert not data_dir.exists(), "the state went to the SQLite file instead of the shared store"
    with HistoryStore(url, password=TEST_PASSWORD) as store:
        first = store.autoscale_states(key)
        stamps = store.autoscale_state_times(key)
    assert list(first) == [name] and first[name]["resources"]["cpu"]["last_sample_at"] is not None

    rc, results, log = run_tasks(tmp_path, [round_task(desk, data_dir, name)], check=True)
    assert rc == 0 and results[0]["stored_state"]["loaded"] == 1, log
    with HistoryStore(url, password=TEST_PASSWORD) as store:
        assert store.autoscale_states(key) == first and store.autoscale_state_times(key) == stamps, \
            "check mode wrote to the shared store"


def current_stage_plan(tmp_path, name, user, stage):
    """A plan whose step for ``user`` since an hour ago is ``running`` at ``stage``."""
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    stages = {"shadow": {"vcpus": 1, "memory_mib": 256}, "warm": stage, "full": stage}
    plan = {"version": 1, "generated_at": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "risk": 0.3,
            "window": {"start": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "end": (since + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")},
            "users": {user: {"desktop": name, "node": "pve1", "method": "prophet", "lead_minutes": 10,
                             "predicted_login": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "stages": stages,
                             "steps": [{"at": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "state": "running",
                                        "stage": "full"}]}}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


@pytest.mark.pve
def test_the_plans_current_stage_is_the_floor(pve_stand_in, tmp_path):
    desk, name = running_pve_desktop(pve_stand_in, "gina")
    plan = current_stage_plan(tmp_path, name, "gina", {"vcpus": 2, "memory_mib": 512})
    extra = {"shadowdesk_data_dir": str(tmp_path / "data"), "shadowdesk_connection": desk.connection,
             "shadowdesk_autoscale_desktops": [name], "shadowdesk_plan_file": str(plan),
             "shadowdesk_autoscale_host": {"cpu_overcommit": 64.0, "memory_reserve_mib": 256}}
    preview = run_playbook("autoscale", tmp_path, dict(extra, shadowdesk_autoscale_plan_floors=False)).ok()
    assert "cpu up" not in preview.stdout and preview.changed == 0, preview.stdout[-3000:]

    run = run_playbook("autoscale", tmp_path, extra).ok()
    assert "cpu up 1.0 -> 2.0 (below its floor (2 CPUs)" in run.stdout and run.changed == 1, run.stdout[-3000:]
    facts = run_module("desktop_info", dict(desk.connection, name=name))["desktops"][0]
    assert facts["config"]["vcpus"] == 2 and not facts["config"]["cpu_limit"]


def test_a_hypervisor_that_fails_does_not_stop_the_others(tmp_path):
    uri = write_node(tmp_path / "node.xml", [dict(name="desk-one", user="one", state="running")])
    data_dir = tmp_path / "data"
    extra = {"shadowdesk_data_dir": str(data_dir), "shadowdesk_connection": {"backend": "libvirt", "api_timeout": 10},
             "shadowdesk_node_connections": {"broken": {"uri": "qemu:///no-such-path"}, "good": {"uri": uri}},
             "shadowdesk_autoscale_bounds": {"cpu": {"min": 1, "max": 1}}}
    run = run_playbook("autoscale", tmp_path, extra)
    assert run.rc != 0 and run.failed == 1, run.output[-3000:]
    assert "libvirt qemu:///no-such-path on localhost: FAILED: Cannot connect to libvirt" in run.stdout, run.stdout
    assert "libvirt %s on localhost: 1 desktops, 0 changed; state saved for 1" % uri in run.stdout, run.stdout
    assert "Traceback" not in run.output
    with HistoryStore(str(data_dir / "history.sqlite3"), read_only=True) as store:
        assert list(store.autoscale_states("libvirt %s on localhost" % uri)) == ["desk-one"]
