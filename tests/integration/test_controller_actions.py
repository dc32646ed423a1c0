"""Controller-side actions in real ansible-playbook runs: file-system errors are clear failures, and check mode
writes nothing (not even the history database)."""

import hashlib
import sqlite3

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.migrations import MIGRATIONS, render
from integration.test_allocation_plan_action import data_dir, plan_task, run_playbook  # noqa: F401  # pylint: disable=unused-import

pytestmark = pytest.mark.playbook


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unwritable_data_dir_is_a_clear_failure(tmp_path, data_dir):
    (data_dir / "plans").write_text("a file where the plans directory should be")
    rc, results, log = run_playbook(tmp_path, plan_task(data_dir))
    assert rc != 0
    (result,) = results
    assert result["failed"] is True
    assert "Cannot use %s" % (data_dir / "plans") in result["msg"], result["msg"]
    # without the fix: "Unexpected failure during module execution" with the traceback in the result
    assert "Traceback" not in result.get("exception", "") and "unexpected failure" not in log.lower(), log
    assert (data_dir / "plans").read_text() == "a file where the plans directory should be"


def forecast_task(data_dir, **extra):
    args = {"data_dir": str(data_dir), "now": "2026-11-23T00:00:00Z", "engine": "serial"}
    args.update(extra)
    return [{"name": "forecast", "shadowdesk.vdi.forecast": args, "register": "fc"}]


def test_forecast_check_mode_creates_no_database(tmp_path):
    data_dir = tmp_path / "fresh"
    rc, results, log = run_playbook(tmp_path, forecast_task(data_dir), check=True)
    assert rc == 0, log
    assert results[0]["forecasts"] == [] and results[0]["path"] is not None  # would write its first file
    assert not data_dir.exists()


def test_forecast_check_mode_migrates_nothing(tmp_path):
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    path = data_dir / "history.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for sql in MIGRATIONS[0][1]:
        raw.execute(render(sql, "sqlite"))
    raw.execute("INSERT INTO schema_version (version) VALUES (1)")
    raw.commit()
    raw.close()
    before = _digest(path)
    rc, results, log = run_playbook(tmp_path, forecast_task(data_dir), check=True)
    assert rc == 0, log
    assert _digest(path) == before
    assert sorted(p.name for p in data_dir.iterdir() if not p.name.startswith("history.sqlite3-")) == [
        "history.sqlite3"]
    with HistoryStore(path) as store:  # a real run migrates it
        assert store.schema_version() == MIGRATIONS[-1][0]
