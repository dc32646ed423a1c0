"""The session flows on real guests: playbooks/reconnect.yml and playbooks/disconnect.yml through real
ansible-playbook runs against a real libvirtd/QEMU guest and the real SQLite history store."""

from __future__ import annotations

import sqlite3

import pytest

from integration.desks import LibvirtDesk
from integration.flows import result_fact, run_playbook
from integration.module_runner import run_module

pytestmark = [pytest.mark.libvirt, pytest.mark.playbook]

FULL = {"vcpus": 2, "memory_mib": 512}
SHADOW = {"vcpus": 1, "memory_mib": 256}


@pytest.fixture
def desk(libvirt_testbed):
    face = LibvirtDesk(libvirt_testbed)
    yield face
    face.cleanup()


def info(desk, name):
    return run_module("desktop_info", dict(desk.connection, name=name))["desktops"][0]


def saved_shadow(desk, user="alice"):
    name = desk.new_name()
    created = run_module("shadow_vm", dict(desk.create_args(name, user), state="running"))
    assert not created.failed, created.get("msg")
    desk.wait_booted(name, timeout=300)
    saved = run_module("shadow_vm", dict(desk.connection, name=name, state="saved"))
    assert not saved.failed, saved.get("msg")
    return name


def flow_vars(desk, data_dir, name, **extra):
    return dict({"user": "alice", "desktop": name, "shadowdesk_data_dir": str(data_dir),
                 "shadowdesk_connection": desk.connection, "shadowdesk_reconnect_full": FULL,
                 "shadowdesk_disconnect_shadow": SHADOW}, **extra)


def events(data_dir):
    with sqlite3.connect(str(data_dir / "history.sqlite3")) as db:
        return db.execute("SELECT user, desktop, event, source FROM events ORDER BY at_utc, id").fetchall()


def test_reconnect_miss_from_saved_then_hit_then_disconnect_saves(desk, tmp_path):
    name = saved_shadow(desk)
    data_dir = tmp_path / "data"

    miss = run_playbook("reconnect", tmp_path, flow_vars(desk, data_dir, name)).ok()
    result = result_fact(miss, "reconnect_result")
    assert result["path"] == "saved" and result["hit"] is False
    assert 0 < float(result["ready_s"]) <= float(result["full_s"])
    facts = info(desk, name)
    assert facts["state"] == "running" and facts["live"]["vcpus"] == 2
    desk.guest_stat(name, cpus=2)  # the restored guest itself sees the hot-plugged vCPU

    hit = run_playbook("reconnect", tmp_path, flow_vars(desk, data_dir, name)).ok()
    assert result_fact(hit, "reconnect_result")["path"] == "hit"

    gone = run_playbook("disconnect", tmp_path, flow_vars(desk, data_dir, name)).ok()
    assert "released (saved)" in gone.stdout
    assert info(desk, name)["state"] == "saved"
    assert events(data_dir) == [("alice", name, "connect", "flows"), ("alice", name, "connect", "flows"),
                                ("alice", name, "disconnect", "flows")]
    with sqlite3.connect(str(data_dir / "history.sqlite3")) as db:
        measured = db.execute("SELECT path, backend, wake_s, resize_s FROM wake_timings ORDER BY trigger_utc").fetchall()
    assert [m[:2] for m in measured] == [("saved", "libvirt"), ("hit", "libvirt")]
    assert measured[0][2] > 0 and measured[0][3] > 0 and measured[1][2] is None  # a hit wakes nothing

    again = run_playbook("disconnect", tmp_path, flow_vars(desk, data_dir, name)).ok()
    assert info(desk, name)["state"] == "saved" and again.changed <= 1  # only the new event

    # The EDA webhook's fast path restores the saved shadow before the rulebook's play starts, and passes what it
    # did: the play finds the desktop running, yet records the miss from saved and the fast path's wake time.
    woken = run_module("shadow_vm", dict(desk.connection, name=name, state="running"))
    assert not woken.failed and woken.changed, woken.get("msg")
    fast = {"desktop": name, "path": "saved", "seconds": 1.25}
    after_fast_path = run_playbook("reconnect", tmp_path,
                                   flow_vars(desk, data_dir, name, shadowdesk_fast_path=fast)).ok()
    result = result_fact(after_fast_path, "reconnect_result")
    assert result["path"] == "saved" and result["hit"] is False and float(result["wake_s"]) == 1.25


def test_disconnect_keeps_a_desktop_whose_user_came_back_during_the_grace(desk, tmp_path):
    name = saved_shadow(desk)
    data_dir = tmp_path / "data"
    run_playbook("reconnect", tmp_path, flow_vars(desk, data_dir, name)).ok()
    kept = run_playbook("disconnect", tmp_path, flow_vars(desk, data_dir, name, grace_minutes=30,
                                                          shadowdesk_now="2099-01-01T00:00:00Z")).ok()
    assert "is kept" in kept.stdout and "grace" in kept.stdout
    assert info(desk, name)["state"] == "running"
