"""The shared PostgreSQL history store in REAL ansible-playbook runs, against a real PostgreSQL 15 server that this
module starts itself (tests/postgres_server.py: temporary directory, unix socket only, no TCP, no systemd).

What AWX needs: the URL from the environment and the password from a credential (never printed), two runs at
the same time that lose nothing, and a server that is down or refuses the login giving a clear error (the
callback still never breaks a play).
"""

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.tests.postgres_server import TEST_PASSWORD, PostgresServer
from integration.test_session_recorder import FIXTURES, UNAVAILABLE, run_playbook

pytestmark = pytest.mark.playbook


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


EVENTS = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: import the sample history into the shared store
      shadowdesk.vdi.history_import:
        kind: csv
        src: {src}
    - name: connect and disconnect, {n} users
      shadowdesk.vdi.session_event:
        user: "{prefix}{{{{ item }}}}"
        desktop: "desk-{prefix}{{{{ item }}}}"
        event: "{{{{ 'connect' if item is even else 'disconnect' }}}}"
        at: "2026-11-21T08:{{{{ '%02d' % (item // 2) }}}}:00Z"
      loop: "{{{{ range({n}) | list }}}}"
    - name: who is connected (the apply_plan role asks this)
      ansible.builtin.debug:
        msg: "connected={{{{ query('shadowdesk.vdi.connected_users', now='2026-11-21T09:00:00Z') | join(',') }}}}"
"""


def _env(url):
    """As an AWX custom credential injects them: the URL without the password, the password apart."""
    return {"SHADOWDESK_HISTORY_URL": url, "SHADOWDESK_HISTORY_PASSWORD": TEST_PASSWORD}


def test_two_runs_at_once_share_the_store_and_lose_nothing(tmp_path, pg):
    pg.create_database("sd_runs", "shadowdesk", TEST_PASSWORD)
    url = pg.url("sd_runs", "shadowdesk")
    procs = []
    for prefix in ("a", "b"):
        run_dir = tmp_path / prefix
        run_dir.mkdir()
        body = EVENTS.format(src=FIXTURES / "sessions.csv", n=40, prefix=prefix)
        procs.append(run_playbook(run_dir, body, run_dir / "data", env=_env(url), wait=False))
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        outputs.append(out + err)
        assert proc.returncode == 0, out + err
    for out in outputs:
        assert UNAVAILABLE not in out, out
        assert TEST_PASSWORD not in out
        assert "connected=" in out
    with HistoryStore(url, password=TEST_PASSWORD) as store:
        sessions = store.sessions()
        by_source = {}
        for s in sessions:
            by_source.setdefault(s["source"], []).append(s)
        assert len(by_source["callback"]) == 40  # 20 connects per run, each one opened session, none lost
        assert sorted({s["user"][0] for s in by_source["callback"]}) == ["a", "b"]
        assert all(s["end"] is None for s in by_source["callback"])  # disconnects were for users never connected
        assert len(by_source["csv"]) == 6  # both runs imported the same file: stored once
        events = store._query("SELECT COUNT(*) FROM events")[0][0]
        assert events == 80
    # Nothing was written to the local data directories: the store is the database.
    assert not (tmp_path / "a" / "data" / "history.sqlite3").exists()


def test_a_refused_login_or_a_down_server_is_clear_and_never_breaks_a_play(tmp_path, pg):
    pg.create_database("sd_refused", "shadowdesk", TEST_PASSWORD)
    url = pg.url("sd_refused", "shadowdesk")
    body = EVENTS.format(src=FIXTURES / "sessions.csv", n=2, prefix="c")
    wrong = {"SHADOWDESK_HISTORY_URL": url, "SHADOWDESK_HISTORY_PASSWORD": "wrong-Pa55word"}
    proc = run_playbook(tmp_path, body, tmp_path / "data", env=wrong)
    assert proc.returncode != 0
    assert "Cannot open the history store postgresql://shadowdesk@/sd_refused" in proc.output, proc.output
    assert "password authentication failed" in proc.output
    assert "wrong-Pa55word" not in proc.output and "Traceback" not in proc.output
    # Only the events (no import, no lookup): the callback meets the refused login, warns once, the play succeeds.
    head, rest = body.split("    - name: import", 1)
    events_only = head + "    - name: connect" + rest.split("    - name: connect", 1)[1].split("    - name: who")[0]
    proc = run_playbook(tmp_path, events_only, tmp_path / "data", env=wrong)
    assert proc.returncode == 0, proc.output
    assert proc.output.count(UNAVAILABLE) == 1, proc.output
    assert "could not be written" in proc.output and "wrong-Pa55word" not in proc.output
    # A server that is not there at all (its socket directory does not exist): the same, quickly.
    gone = {"SHADOWDESK_HISTORY_URL": url.replace(pg.socket_dir, pg.socket_dir + "-gone")}
    proc = run_playbook(tmp_path, events_only, tmp_path / "data", env=gone)
    assert proc.returncode == 0, proc.output
    assert proc.output.count(UNAVAILABLE) == 1, proc.output
    with HistoryStore(url, password=TEST_PASSWORD) as store:
        assert store.sessions() == []
