"""traffic_import inside a real ansible-playbook run: flows in, anonymous hourly aggregates in the real SQLite store
out; small classes suppressed, nothing identifying a desktop stored, idempotent, check mode writes nothing, a
malformed export fails clearly and stores nothing."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from integration.test_session_recorder import run_playbook

pytestmark = [pytest.mark.playbook]

USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]


def write_flows(path):
    """Six desktops (10.20.0.1-6) use a video service at 09:00-11:00; two of them also reach 198.51.100.7 over ssh
    (a class of two desktops); one flow comes from outside the desktops' network. Users' names ride along in an
    extra column, as exporters enriched by a broker do."""
    rows = []
    for i, user in enumerate(USERS, start=1):
        for hour in (9, 10):
            rows.append({"start": "2026-12-01T%02d:05:00Z" % hour, "end": "2026-12-01T%02d:35:00Z" % hour,
                         "src": "10.20.0.%d" % i, "dst": "192.0.2.%d" % (10 + i), "dst_port": 3478, "proto": "udp",
                         "bytes": 1_000_000 * i, "packets": 1000, "username": user})
    for i in (1, 2):
        rows.append({"start": "2026-12-01T09:10:00Z", "end": "2026-12-01T09:20:00Z", "src": "10.20.0.%d" % i,
                     "dst": "198.51.100.7", "dst_port": 22, "proto": "tcp", "bytes": 5000, "packets": 20,
                     "username": USERS[i - 1]})
    rows.append({"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T09:01:00Z", "src": "172.16.5.5",
                 "dst": "192.0.2.11", "dst_port": 443, "proto": "tcp", "bytes": 10, "packets": 1, "username": "x"})
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    classes: {{office: [10.20.0.0/16]}}
    services: {{video-conference: [192.0.2.0/24]}}
  tasks:
    - shadowdesk.vdi.traffic_import: {{src: "{flows}", usage_classes: "{{{{ classes }}}}", services: "{{{{ services }}}}"}}
      check_mode: true
      register: preview
    - ansible.builtin.stat: {{path: "{data}/history.sqlite3"}}
      register: after_preview
    - shadowdesk.vdi.traffic_import: {{src: "{flows}", usage_classes: "{{{{ classes }}}}", services: "{{{{ services }}}}"}}
      register: first
    - shadowdesk.vdi.traffic_import: {{src: "{flows}", usage_classes: "{{{{ classes }}}}", services: "{{{{ services }}}}"}}
      register: second
    - shadowdesk.vdi.traffic_import: {{src: "{bad}", usage_classes: "{{{{ classes }}}}"}}
      register: malformed
      ignore_errors: true
    - shadowdesk.vdi.traffic_import: {{src: "{flows}", usage_classes: {{office: [not-a-network]}}}}
      register: bad_class
      ignore_errors: true
    - ansible.builtin.copy:
        dest: "{out}"
        content: "{{{{ {{'preview': preview, 'stored_after_preview': after_preview.stat.exists, 'first': first,
                       'second': second, 'malformed': malformed, 'bad_class': bad_class}} | to_json }}}}"
        mode: "0600"
"""


def test_flows_are_stored_anonymised_once(tmp_path):
    data = tmp_path / "data"
    flows, bad, out = tmp_path / "flows.csv", tmp_path / "bad.json", tmp_path / "out.json"
    write_flows(flows)
    bad.write_text('{"flows": "this is not a list of flow records"')
    proc = run_playbook(tmp_path, PLAY.format(flows=flows, bad=bad, data=data, out=out), data)
    assert proc.returncode == 0, proc.output
    assert "Traceback" not in proc.output
    got = json.loads(out.read_text())

    preview, first, second = got["preview"], got["first"], got["second"]
    assert preview["changed"] and not got["stored_after_preview"], "check mode wrote the store"
    assert first["changed"] and first["report"]["added"] == preview["report"]["added"] == 2
    assert first["report"]["suppressed_classes"] == 1 and first["report"]["suppressed_flows"] == 2
    assert first["report"]["skipped"] == {"source is not in any usage class": 1}
    assert not second["changed"] and second["report"]["duplicates"] == 2
    assert got["malformed"]["failed"] and "not JSON" in got["malformed"]["msg"]
    assert got["bad_class"]["failed"] and "not-a-network" in got["bad_class"]["msg"]

    with sqlite3.connect(str(data / "history.sqlite3")) as db:
        rows = db.execute("SELECT hour_utc, usage_class, app_class, destination, bytes FROM traffic_hourly "
                          "ORDER BY hour_utc").fetchall()
        dump = "\n".join(db.iterdump())
    assert rows == [("2026-12-01T09:00:00.000000Z", "office", "video", "video-conference", 21_000_000),
                    ("2026-12-01T10:00:00.000000Z", "office", "video", "video-conference", 21_000_000)]
    for secret in USERS + ["10.20.0.", "198.51.100", "192.0.2.1"]:
        assert secret not in dump, secret  # no user, desktop address, or suppressed destination in the store


SAMPLE_PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    rows:
      - {{hour: "2026-12-07T09:00:00Z", usage_class: office, app_class: web, destination: 192.0.2.0/24,
         bytes: 5000, packets: 10, flows: 2, connections: 0.1}}
  tasks:
    - shadowdesk.vdi.traffic_import: {{aggregates: "{{{{ rows }}}}", source: "conntrack:abcd:2026-12-07T09:05:00Z"}}
      register: first
    - shadowdesk.vdi.traffic_import: {{aggregates: "{{{{ rows }}}}", source: "conntrack:abcd:2026-12-07T09:05:00Z"}}
      register: again
    - shadowdesk.vdi.traffic_import:
        aggregates: "{{{{ [rows[0] | combine({{'src': '10.20.0.7'}})] }}}}"
        source: "conntrack:abcd:2026-12-07T09:10:00Z"
      register: leaky
      ignore_errors: true
    - shadowdesk.vdi.traffic_import: {{aggregates: "{{{{ rows }}}}"}}
      register: no_source
      ignore_errors: true
    - ansible.builtin.copy:
        dest: "{out}"
        content: "{{{{ {{'first': first, 'again': again, 'leaky': leaky, 'no_source': no_source}} | to_json }}}}"
        mode: "0600"
"""


def test_samples_from_a_hypervisor_are_stored_once_and_never_with_an_address(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out.json"
    proc = run_playbook(tmp_path, SAMPLE_PLAY.format(out=out), data)
    assert proc.returncode == 0, proc.output
    got = json.loads(out.read_text())
    assert got["first"]["changed"] and got["first"]["added"] == 1
    assert not got["again"]["changed"] and got["again"]["report"]["duplicates"] == 1
    assert got["leaky"]["failed"] and "src" in got["leaky"]["msg"]
    assert got["no_source"]["failed"] and "source" in got["no_source"]["msg"]
    with sqlite3.connect(str(data / "history.sqlite3")) as db:
        assert db.execute("SELECT COUNT(*), SUM(bytes) FROM traffic_hourly").fetchone() == (1, 5000)
