"""The session_recorder callback, session_event and history_import inside REAL ansible-playbook runs.

Each test runs ``ansible-playbook`` as a subprocess against localhost with the collection from
``.build/collections`` and a private data directory, then reads the SQLite store directly.
"""

import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"
FIXTURES = ROOT / "tests" / "fixtures" / "history"
PLAYBOOK_BIN = pathlib.Path(sys.executable).with_name("ansible-playbook")
UNAVAILABLE = "history store unavailable"

pytestmark = pytest.mark.playbook


def run_playbook(tmp_path, body, data_dir, extra_args=(), wrapper=(), env=None, wait=True):
    """Run ``body`` with the recorder enabled; ``env`` adds variables; ``wait=False`` returns the running Popen."""
    play = tmp_path / "play.yml"
    play.write_text(textwrap.dedent(body))
    extra_env, env = env or {}, dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_CALLBACKS_ENABLED": "shadowdesk.vdi.session_recorder",
        "SHADOWDESK_DATA_DIR": str(data_dir),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    })
    env.update(extra_env)
    cmd = list(wrapper) + [str(PLAYBOOK_BIN), "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=%s" % sys.executable, str(play)]
    cmd += list(extra_args)
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    proc = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
                          check=False)
    proc.output = proc.stdout + proc.stderr
    return proc


def rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


TWO_EVENTS = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: alice connects
      shadowdesk.vdi.session_event:
        user: alice
        desktop: desk-alice
        event: connect
        at: "2026-11-21T08:00:00Z"
        resources: {vcpus: 4, memory_mib: 8192}
    - name: alice disconnects
      shadowdesk.vdi.session_event:
        user: alice
        desktop: desk-alice
        event: disconnect
        at: "2026-11-21T12:30:00+01:00"
"""


def test_callback_records_events(tmp_path):
    data = tmp_path / "data"
    proc = run_playbook(tmp_path, TWO_EVENTS, data)
    assert proc.returncode == 0, proc.output
    assert UNAVAILABLE not in proc.output
    db = data / "history.sqlite3"
    assert rows(db, "SELECT user, desktop, event, at_utc, resources FROM events ORDER BY id") == [
        ("alice", "desk-alice", "connect", "2026-11-21T08:00:00.000000Z", '{"memory_mib": 8192, "vcpus": 4}'),
        ("alice", "desk-alice", "disconnect", "2026-11-21T11:30:00.000000Z", "{}"),
    ]
    assert rows(db, "SELECT user, desktop, start_utc, end_utc, source FROM sessions") == [
        ("alice", "desk-alice", "2026-11-21T08:00:00.000000Z", "2026-11-21T11:30:00.000000Z", "callback")]
    # Running the same play again records nothing new (events are idempotent).
    assert run_playbook(tmp_path, TWO_EVENTS, data).returncode == 0
    assert rows(db, "SELECT COUNT(*) FROM events") == [(2,)]
    # Check mode records nothing.
    proc = run_playbook(tmp_path, TWO_EVENTS.replace("21T08", "22T08").replace("21T12", "22T12"), data, ["--check"])
    assert proc.returncode == 0, proc.output
    assert rows(db, "SELECT COUNT(*) FROM events") == [(2,)]


LOCKER = """
import os, sqlite3, sys, time
db, flag, ready, released = sys.argv[1:5]
con = sqlite3.connect(db, isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
open(ready, "w").close()
while os.path.exists(flag):
    time.sleep(0.05)
con.execute("ROLLBACK")
con.close()
open(released, "w").close()
"""

LOCKED_MID_PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    db: "{data}/history.sqlite3"
  tasks:
    - shadowdesk.vdi.session_event: {{user: alice, desktop: desk-alice, event: connect, at: "2026-11-21T08:00:00Z"}}
    - name: another process takes the store's write lock
      ansible.builtin.shell: "nohup {python} {tmp}/locker.py {{{{ db }}}} {tmp}/flag {tmp}/ready {tmp}/released >{tmp}/locker.log 2>&1 &"
    - ansible.builtin.wait_for: {{path: "{tmp}/ready", timeout: 60}}
    - shadowdesk.vdi.session_event: {{user: alice, desktop: desk-alice, event: disconnect, at: "2026-11-21T12:00:00Z"}}
    - shadowdesk.vdi.session_event: {{user: bob, desktop: desk-bob, event: connect, at: "2026-11-21T12:05:00Z"}}
    - name: the other process lets go
      ansible.builtin.file: {{path: "{tmp}/flag", state: absent}}
    - ansible.builtin.wait_for: {{path: "{tmp}/released", timeout: 60}}
"""


def test_store_locked_mid_play_buffers_and_retries(tmp_path):
    data = tmp_path / "data"
    (tmp_path / "locker.py").write_text(LOCKER)
    (tmp_path / "flag").write_text("")
    body = LOCKED_MID_PLAY.format(data=data, tmp=tmp_path, python=sys.executable)
    proc = run_playbook(tmp_path, body, data)
    assert proc.returncode == 0, proc.output
    assert proc.output.count(UNAVAILABLE) == 1, proc.output  # warned once, not per event
    assert "buffered events written" in proc.output
    db = data / "history.sqlite3"
    assert rows(db, "SELECT user, event FROM events ORDER BY at_utc") == [
        ("alice", "connect"), ("alice", "disconnect"), ("bob", "connect")]
    assert rows(db, "SELECT user, end_utc FROM sessions ORDER BY user") == [
        ("alice", "2026-11-21T12:00:00.000000Z"), ("bob", None)]


def _readonly_wrapper(path):
    """Make ``path`` read-only for the playbook process. Root ignores mode bits, so root gets a private mount
    namespace with a read-only bind mount of the directory instead."""
    if os.geteuid() != 0:
        for p in [path] + list(path.iterdir()):
            p.chmod(0o555 if p.is_dir() else 0o444)
        return ()
    if not shutil.which("unshare"):
        pytest.skip("running as root without unshare(1): cannot make a read-only data directory")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" '
                            '&& ! touch "$0/.probe" 2>/dev/null', str(path)], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot make a read-only bind mount here (needs CAP_SYS_ADMIN): %s" % probe.stderr[-200:])
    return ("unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && shift && '
            'exec "$@"', str(path), "--")


def test_readonly_data_dir_play_succeeds_with_warning(tmp_path):
    data = tmp_path / "data"
    with HistoryStore(data / "history.sqlite3") as store:
        store.record_event("carol", "desk-carol", "connect", at="2026-11-20T08:00:00Z")
    db = data / "history.sqlite3"
    before = db.read_bytes()
    wrapper = _readonly_wrapper(data)
    try:
        proc = run_playbook(tmp_path, TWO_EVENTS, data, wrapper=wrapper)
    finally:
        for p in [data] + list(data.iterdir()):
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert proc.returncode == 0, proc.output
    assert proc.output.count(UNAVAILABLE) == 1, proc.output
    assert "2 event(s) could not be written" in proc.output
    assert db.read_bytes() == before  # what was stored before is untouched
    assert rows(db, "SELECT user, event FROM events") == [("carol", "connect")]


def test_corrupt_store_play_succeeds_and_file_is_kept(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    junk = b"not a sqlite database\n" * 64
    (data / "history.sqlite3").write_bytes(junk)
    proc = run_playbook(tmp_path, TWO_EVENTS, data)
    assert proc.returncode == 0, proc.output
    assert proc.output.count(UNAVAILABLE) == 1, proc.output
    assert (data / "history.sqlite3").read_bytes() == junk


IMPORTS = """
- hosts: localhost
  gather_facts: false
  tasks:
    - shadowdesk.vdi.history_import: {{kind: csv, src: "{fx}/sessions.csv"}}
      register: first
    - shadowdesk.vdi.history_import: {{kind: csv, src: "{fx}/sessions.csv"}}
      register: second
    - shadowdesk.vdi.history_import: {{kind: wtmp, src: "{fx}/sessions.csv"}}
      register: malformed
      ignore_errors: true
    - shadowdesk.vdi.history_import: {{kind: ics, src: "{fx}/alice_calendar.ics", user: alice}}
      register: no_consent
      ignore_errors: true
    - shadowdesk.vdi.history_import: {{kind: ics, src: "{fx}/alice_calendar.ics", user: alice, consent: true}}
      register: calendar
    - shadowdesk.vdi.history_import: {{kind: proxmox_tasks, src: "{fx}/pve_tasks.json", desktop_map: {{101: desk-alice}}}}
      register: pve
    - ansible.builtin.assert:
        that:
          - first is changed
          - first.report.added == 6
          - first.report.rejected.overlap == 1
          - first.report.rejected_total == 5
          - second is not changed
          - second.report.duplicates == 6
          - malformed is failed
          - "'not a multiple' in malformed.msg"
          - "'Traceback' not in (malformed.msg + (malformed.exception | default('')))"
          - no_consent is failed
          - "'consent' in no_consent.msg"
          - calendar is changed
          - calendar.report.added == 5
          - pve.report.added == 3
"""


def test_history_import_module(tmp_path):
    data = tmp_path / "data"
    proc = run_playbook(tmp_path, IMPORTS.format(fx=FIXTURES), data)
    assert proc.returncode == 0, proc.output
    db = data / "history.sqlite3"
    assert rows(db, "SELECT COUNT(*) FROM sessions WHERE source = 'csv'") == [(6,)]
    assert rows(db, "SELECT user FROM consents WHERE calendar = 1") == [("alice",)]
    assert rows(db, "SELECT COUNT(*) FROM calendar_events") == [(5,)]


CHECK_ONLY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - shadowdesk.vdi.history_import: {{kind: libvirt_events, src: "{fx}/virsh_events.log", domain_prefix: sdhist-}}
      register: preview
    - ansible.builtin.assert:
        that:
          - preview is changed
          - preview.report.added == 4
"""


def test_history_import_check_mode_writes_nothing(tmp_path):
    data = tmp_path / "data"
    proc = run_playbook(tmp_path, CHECK_ONLY.format(fx=FIXTURES), data, ["--check"])
    assert proc.returncode == 0, proc.output
    assert not data.exists()
    # With an existing store, check mode dry-runs against it and still writes nothing.
    with HistoryStore(data / "history.sqlite3"):
        pass
    proc = run_playbook(tmp_path, CHECK_ONLY.format(fx=FIXTURES), data, ["--check"])
    assert proc.returncode == 0, proc.output
    assert rows(data / "history.sqlite3", "SELECT COUNT(*) FROM sessions") == [(0,)]
