"""The core loop end to end, on real guests: history -> forecast (Prophet) -> plan -> apply_plans.yml.

It is also the regression test of the "11:45" defect: a planned release means "if the user has not come by then";
a desktop with a connected console client, or whose user came, is released by the disconnect, not by the plan.

Real ``ansible-playbook`` runs of the collection's own playbooks, a real SQLite history store, real Prophet fits and
real QEMU guests under libvirtd. The clock is injected (``shadowdesk_now``), so the test replays the morning of
the user's predicted login in seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from integration.desks import LibvirtDesk
from integration.flows import VncClient, add_vnc
from integration.module_runner import run_module

pytestmark = [pytest.mark.libvirt, pytest.mark.prophet, pytest.mark.playbook]

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 16, 0, 0, tzinfo=dt.timezone.utc)  # a Monday


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text):
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def write_history(path, user, desktop):
    """Four weeks of weekday sessions around 08:00-17:00 UTC for ``user`` (with day-to-day jitter)."""
    rows = ["user,start,end,desktop"]
    for day in range(28, 0, -1):
        date = (NOW - dt.timedelta(days=day)).date()
        if date.weekday() >= 5:
            continue
        jitter = (day * 7) % 25 - 12  # minutes, deterministic spread
        start = dt.datetime.combine(date, dt.time(8, 0), tzinfo=dt.timezone.utc) + dt.timedelta(minutes=jitter)
        end = start + dt.timedelta(hours=9)
        rows.append("%s,%s,%s,%s" % (user, iso(start), iso(end), desktop))
    path.write_text("\n".join(rows) + "\n")


def playbook(name, extra_vars, env):
    proc = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "shadowdesk.vdi.%s" % name,
         "-e", "@%s" % extra_vars],
        capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    recap = re.search(r"localhost\s*: ok=(\d+)\s+changed=(\d+)", proc.stdout)
    assert recap, proc.stdout[-2000:]
    return int(recap.group(2)), proc.stdout


@pytest.fixture
def desk(libvirt_testbed):
    face = LibvirtDesk(libvirt_testbed)
    yield face
    face.cleanup()


def test_history_to_forecast_to_plan_to_applied_before_the_login(desk, tmp_path):
    alice, bob = desk.new_name(), desk.new_name()
    for name, user in ((alice, "alice"), (bob, "bob")):
        created = run_module("shadow_vm", dict(desk.create_args(name, user), state="present"))
        assert not created.failed, created.get("msg")
        if name == alice:
            add_vnc(desk.conn, alice)  # alice works through a VNC console on loopback
        started = run_module("shadow_vm", dict(desk.connection, name=name, state="running"))
        assert not started.failed, started.get("msg")
        desk.wait_booted(name, timeout=300)  # TCG boots of a loaded shared test bed take up to ~2 min
        saved = run_module("shadow_vm", dict(desk.connection, name=name, state="saved"))
        assert not saved.failed, saved.get("msg")

    data_dir = tmp_path / "data"
    history = tmp_path / "history.csv"
    write_history(history, "alice", alice)
    env = dict(os.environ, SHADOWDESK_DATA_DIR=str(data_dir), ANSIBLE_NOCOLOR="1")
    site = tmp_path / "site.yml"
    size = dict(max_vcpus=4, max_memory_mib=512, shadow_vcpus=1, shadow_memory_mib=256)
    site.write_text(yaml.safe_dump({
        "forecast_data_dir": str(data_dir),
        "forecast_now": iso(NOW),
        "forecast_import_sources": [{"kind": "csv", "src": str(history)}],
        "forecast_desktops": {"alice": dict(size, desktop=alice), "bob": dict(size, desktop=bob)},
        "forecast_nodes": [{"name": "local", "vcpus": 16, "memory_mib": 16384}],
        "shadowdesk_data_dir": str(data_dir),
        "shadowdesk_connection": desk.connection,
    }))

    changed = playbook("forecast", site, env)[0]
    assert changed >= 2  # history imported, forecast fitted, plan written
    plan = json.loads((data_dir / "plans" / "latest.json").read_text())
    a_plan, b_plan = plan["users"]["alice"], plan["users"]["bob"]
    assert a_plan["method"] == "prophet" and a_plan["steps"]
    assert b_plan["steps"] == [], "a user without history is left alone"
    login = parse(a_plan["predicted_login"])
    assert dt.datetime(2026, 11, 16, 6, 0, tzinfo=dt.timezone.utc) <= login <= dt.datetime(
        2026, 11, 16, 9, 0, tzinfo=dt.timezone.utc), "alice logs in around 08:00 UTC on weekdays"
    monday = [s for s in a_plan["steps"] if parse(s["at"]) <= login]
    assert monday and monday[0]["state"] == "running"
    full_at = max(parse(s["at"]) for s in monday)

    # The schedule runs a little after the last step before the predicted login: alice is awake and full size
    tick = dict(yaml.safe_load(site.read_text()), shadowdesk_now=iso(full_at + dt.timedelta(minutes=1)))
    tick_file = tmp_path / "tick.yml"
    tick_file.write_text(yaml.safe_dump(tick))
    assert full_at + dt.timedelta(minutes=1) < login
    changed = playbook("apply_plans", tick_file, env)[0]
    assert changed >= 1
    info = run_module("desktop_info", dict(desk.connection, name=alice))["desktops"][0]
    stage = a_plan["stages"][monday[-1]["stage"]]
    assert monday[-1]["stage"] == "full" and stage["vcpus"] > 1 and stage["memory_mib"] > 256, a_plan["stages"]
    assert info["state"] == "running"
    assert info["live"]["vcpus"] == stage["vcpus"] and info["live"]["memory_mib"] == stage["memory_mib"]
    desk.guest_stat(alice, cpus=stage["vcpus"])  # the guest itself sees the planned vCPUs

    # bob, with no history, was left alone: still a saved shadow
    assert run_module("desktop_info", dict(desk.connection, name=bob))["desktops"][0]["state"] == "saved"

    # the stages are applied once: the same tick again changes nothing
    changed = playbook("apply_plans", tick_file, env)[0]
    assert changed == 0

    # The 11:45 defect: the plan releases at the end of the arrival window (mid-morning for an 08:00-17:00 user).
    # alice is working through her console and no broker recorded a session: the hypervisor's own signal (QEMU's
    # connected VNC client) must keep her desktop - not saved, not shrunk.
    release_at = min(parse(s["at"]) for s in a_plan["steps"] if s["state"] != "running" and parse(s["at"]) > login)
    tick_file.write_text(yaml.safe_dump(dict(tick, shadowdesk_now=iso(release_at + dt.timedelta(minutes=1)))))
    with VncClient(desk.conn, alice):
        out = playbook("apply_plans", tick_file, env)[1]
        kept = run_module("desktop_info", dict(desk.connection, name=alice))["desktops"][0]
    assert kept["state"] == "running", "a desktop with a connected console is never released by the plan"
    assert kept["live"]["vcpus"] == stage["vcpus"] and kept["live"]["memory_mib"] == stage["memory_mib"], kept["live"]
    assert "vnc console connected from 127.0.0.1" in out, out[-3000:]

    # alice connects (the recorder callback stores the event): the planned release must not save her session
    recorder_env = dict(env, ANSIBLE_CALLBACKS_ENABLED="shadowdesk.vdi.session_recorder")
    session_event(tmp_path, alice, "connect", login + dt.timedelta(minutes=3), recorder_env)
    tick_file.write_text(yaml.safe_dump(dict(tick, shadowdesk_now=iso(release_at + dt.timedelta(minutes=1)))))
    playbook("apply_plans", tick_file, env)
    assert desktop_state(desk, alice) == "running", "a connected user's desktop is never released by the plan"

    # ...and once she has disconnected, the same release applies
    session_event(tmp_path, alice, "disconnect", release_at + dt.timedelta(minutes=2), recorder_env)
    tick_file.write_text(yaml.safe_dump(dict(tick, shadowdesk_now=iso(release_at + dt.timedelta(minutes=3)))))
    changed = playbook("apply_plans", tick_file, env)[0]
    assert changed >= 1 and desktop_state(desk, alice) in ("saved", "paused")


def desktop_state(desk, name):
    return run_module("desktop_info", dict(desk.connection, name=name))["desktops"][0]["state"]


def session_event(tmp_path, desktop, event, at, env):
    """A real play that reports a connect/disconnect, as the reconnect/disconnect roles will."""
    play = tmp_path / ("event-%s.yml" % event)
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "tasks": [{"shadowdesk.vdi.session_event": {"user": "alice", "desktop": desktop, "event": event,
                                                     "at": iso(at)}}]}]))
    proc = subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
                           str(play)], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0 and "WARNING" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
