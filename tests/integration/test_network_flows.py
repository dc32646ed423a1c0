"""The network shadow end to end, through real ansible-playbook runs on the PVE stand-in: three weeks of flow
exports imported (anonymised), the next day's traffic forecast and reservations planned, a reconnect inside the
planned surge sets the desktop's shadow up with the reservation of the moment, the disconnect tears it down."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest

from integration.desks import ProxmoxDesk
from integration.flows import run_playbook
from integration.module_runner import run_module

pytestmark = [pytest.mark.pve, pytest.mark.playbook]

# The plan is made for the hour this test runs in, and the daily surge is put in that hour and the next, so that the
# reconnect (which reads the reservations at its own trigger time, now) lands inside the planned window.
ORIGIN = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
DAYS = 21
DAY0 = ORIGIN - dt.timedelta(days=DAYS)
SURGE_HOURS = (ORIGIN.hour, (ORIGIN.hour + 1) % 24)
SERVICES = {"video-conference": ["192.0.2.0/24"]}


def write_flows(path):
    """Six desktops: 10 MB an hour to the video service, 2 GB an hour in the two surge hours of every day."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "end", "src", "dst", "dst_port", "proto", "bytes", "packets"])
        for day in range(DAYS):
            for hour in range(24):
                start = DAY0 + dt.timedelta(days=day, hours=hour, minutes=5)
                surge = (DAY0 + dt.timedelta(hours=hour)).hour in SURGE_HOURS
                for desk in range(1, 7):
                    end = start + dt.timedelta(minutes=50 if surge else 10)
                    writer.writerow([start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                     "10.20.0.%d" % desk, "192.0.2.%d" % (20 + desk), 3478, "udp",
                                     2_000_000_000 if surge else 10_000_000, 1000])


PLAN_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - shadowdesk.vdi.traffic_import:
        src: "{flows}"
        usage_classes: {{office: [10.20.0.0/16]}}
        services: {services}
    - shadowdesk.vdi.traffic_forecast:
        now: "{now}"
        services: {services}
      register: planned
    - shadowdesk.vdi.traffic_forecast:
        now: "{now}"
        services: {services}
      register: again
    - ansible.builtin.copy:
        dest: "{out}"
        content: "{{{{ {{'planned': planned, 'again': again}} | to_json }}}}"
        mode: "0600"
"""


def test_flows_to_forecast_to_reservations_at_login_and_teardown_at_logout(pve_stand_in, tmp_path):
    data = tmp_path / "data"
    flows, out = tmp_path / "flows.csv", tmp_path / "plan-result.json"
    write_flows(flows)
    now = ORIGIN.strftime("%Y-%m-%dT%H:%M:%SZ")
    play = tmp_path / "plan.yml"
    play.write_text(PLAN_PLAY.format(flows=flows, services=json.dumps(SERVICES), now=now, out=out))
    from integration.test_session_recorder import run_playbook as run_play_file
    proc = run_play_file(tmp_path, play.read_text(), data)
    assert proc.returncode == 0, proc.output[-4000:]
    result = json.loads(out.read_text())
    assert result["planned"]["changed"] and not result["again"]["changed"]
    (reservation,) = result["planned"]["plan"]["reservations"]
    assert reservation["name"] == "video:video-conference" and reservation["destinations"] == ["192.0.2.0/24"]
    iso = "%Y-%m-%dT%H:%M:%SZ"
    assert reservation["windows"] == [{"start": (ORIGIN - dt.timedelta(minutes=15)).strftime(iso),
                                       "end": (ORIGIN + dt.timedelta(hours=2)).strftime(iso)}]
    assert 1 < reservation["rate_mbit"] < 100, reservation
    plan_file = data / "network" / "plan.json"
    assert json.loads(plan_file.read_text())["reservations"] == [reservation]

    desk = ProxmoxDesk(pve_stand_in)
    name = desk.new_name()
    assert not run_module("shadow_vm", dict(desk.create_args(name, "alice"), state="saved")).failed
    flow_vars = {"user": "alice", "desktop": name, "shadowdesk_data_dir": str(data),
                 "shadowdesk_connection": desk.connection,
                 "shadowdesk_network_shadow": {"bridge": "vmbr9", "rate_mbit": 100}}
    primary = desk.vm_by_name(name)[1]["config"].get("net0")
    login = run_playbook("reconnect", tmp_path, flow_vars).ok()  # now: inside the window
    assert "reservations video:video-conference=%s" % reservation["rate_mbit"] in login.stdout, login.stdout[-3000:]
    vmid, vm = desk.vm_by_name(name)
    assert vm["status"] == "running" and "bridge=vmbr9" in vm["config"]["net1"], vm["config"]
    assert "rate=12.5" in vm["config"]["net1"]  # 100 Mbit/s in PVE's MB/s
    assert vm["config"].get("net0") == primary  # the primary interface is never touched

    # The schedule: inside the window the desktop keeps the full rate (nothing to change); after the window it is
    # back at the minimal rate, held until tomorrow's surge (which the plan made at that hour includes).
    schedule = {"shadowdesk_data_dir": str(data), "shadowdesk_connection": desk.connection,
                "shadowdesk_network_shadow": flow_vars["shadowdesk_network_shadow"],
                "shadowdesk_flow_import": {"services": SERVICES}}
    held = run_playbook("network_plan", tmp_path, dict(schedule, shadowdesk_now=now)).ok()
    assert "held now: video:video-conference=%s" % reservation["rate_mbit"] in held.stdout, held.stdout[-3000:]
    assert held.changed == 0, held.stdout[-3000:]
    after = (ORIGIN + dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    released = run_playbook("network_plan", tmp_path, dict(schedule, shadowdesk_now=after)).ok()
    assert "held now: video:video-conference=1.0 " in released.stdout, released.stdout[-3000:]
    assert "(item=%s)" % name in released.stdout, released.stdout[-3000:]

    run_playbook("disconnect", tmp_path, flow_vars).ok()
    vm = pve_stand_in.vm(vmid)
    assert vm["status"] == "stopped" and vm["config"].get("vmstate") and "net1" not in vm["config"], vm["config"]
