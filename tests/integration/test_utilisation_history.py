"""Measured utilisation becomes history, and history becomes the resource profiles that size plans.

A real ``ansible-playbook`` run measures a desktop with ``desktop_info`` (on the Proxmox VE stand-in) while the
``session_recorder`` callback is enabled; the samples land in the SQLite store; the ``forecast`` action then
returns the user's resource profile from them.
"""

import json

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from integration.desks import ProxmoxDesk
from integration.module_runner import run_module
from integration.test_session_recorder import run_playbook

pytestmark = [pytest.mark.playbook, pytest.mark.pve]

MEASURE = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Measure the desktop a few times
      shadowdesk.vdi.desktop_info:
        name: {name}
        utilisation: true
        interval: 1.0  # samples are keyed by the second they were taken
        backend: proxmox
        api_host: {api_host}
        api_port: {api_port}
        api_user: {api_user}
        api_token_id: {api_token_id}
        api_token_secret: {api_token_secret}
        ca_path: {ca_path}
      loop: [1, 2, 3]

    - name: Forecast, which also profiles the measured users
      shadowdesk.vdi.forecast:
        data_dir: {data_dir}
        now: "2026-11-23T00:00:00Z"
      register: fitted

    - name: Keep the profiles for the test
      ansible.builtin.copy:
        content: "{{{{ fitted.profiles | to_json }}}}"
        dest: {out}
        mode: "0644"
"""


def test_desktop_info_samples_feed_the_users_profile(pve_stand_in, tmp_path):
    desk = ProxmoxDesk(pve_stand_in)
    name = desk.new_name()
    created = run_module("shadow_vm", dict(desk.create_args(name, "lena"), state="running"))
    assert not created.failed, created.get("msg")
    data_dir = tmp_path / "data"
    conn = {k: v for k, v in desk.connection.items() if k not in ("backend", "node", "api_timeout")}
    out = tmp_path / "profiles.json"
    proc = run_playbook(tmp_path, MEASURE.format(name=name, data_dir=data_dir, out=out, **conn), data_dir)
    assert proc.returncode == 0, proc.output[-3000:]

    with HistoryStore(data_dir / "history.sqlite3") as store:
        samples = store.utilisation(user="lena")
    assert len(samples) == 3 and {s["desktop"] for s in samples} == {name}
    assert all(s["vcpus"] == 1 and s["cpu_percent"] is not None for s in samples)

    profiles = json.loads(out.read_text())
    (profile,) = [p for p in profiles if p["user"] == "lena"]
    assert profile["samples"] == 3 and profile["vcpus"] >= 1 and len(profile["hourly"]) == 24
