"""Real ansible-playbook runs of shadowdesk.vdi.allocation_plan (and the due_actions side of apply_plans.yml)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_collections.shadowdesk.vdi.tests import plan_data

pytestmark = pytest.mark.playbook

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"
PLAYBOOK_BIN = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or shutil.which(
    "ansible-playbook")


# A minimal callback that records every task result of localhost into a JSON file (ansible.posix.json is not
# installed offline); stdout keeps the default callback for the failure log.
RECORDER = """
import json, os
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'record'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.results = []

    def _add(self, result, **extra):
        data = json.loads(json.dumps(result._result, default=str))
        data.update(extra)
        self.results.append(data)

    def v2_runner_on_ok(self, result):
        self._add(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._add(result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._add(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        with open(os.environ['SD_RECORD'], 'w') as handle:
            json.dump(self.results, handle)
"""


def run_playbook(tmp_path, tasks_or_path, extra=(), check=False):
    if isinstance(tasks_or_path, list):
        path = tmp_path / "play.yml"
        path.write_text(yaml.safe_dump([{"name": "plan", "hosts": "localhost", "connection": "local",
                                         "gather_facts": False, "tasks": tasks_or_path}], sort_keys=False))
    else:
        path = tasks_or_path
    plugins = tmp_path / "callback_plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "record.py").write_text(RECORDER)
    record = tmp_path / "record.json"
    if record.exists():
        record.unlink()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CALLBACK_PLUGINS=str(plugins),
               ANSIBLE_CALLBACKS_ENABLED="record", SD_RECORD=str(record), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_NOCOLOR="1",
               SHADOWDESK_DATA_DIR=str(tmp_path / "unused-default"))
    cmd = [PLAYBOOK_BIN, "-i", "localhost,", str(path)] + list(extra) + (["--check"] if check else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path), check=False)
    log = proc.stdout + proc.stderr
    results = json.loads(record.read_text()) if record.exists() else []
    return proc.returncode, results, log


def plan_task(data_dir, forecasts="forecasts.json", **overrides):
    args = {"forecasts": forecasts, "desktops": plan_data.DESKTOPS, "nodes": plan_data.NODES,
            "profiles": plan_data.PROFILES, "prices": plan_data.PRICES, "data_dir": str(data_dir),
            "now": plan_data.NOW}
    args.update(overrides)
    return [{"name": "allocation plan", "shadowdesk.vdi.allocation_plan": args, "register": "planned"}]


@pytest.fixture
def data_dir(tmp_path):
    directory = tmp_path / "data"
    (directory / "forecasts").mkdir(parents=True)
    forecasts = [plan_data.forecast("alice"), plan_data.forecast("bob", method="fallback", sessions=3)]
    (directory / "forecasts" / "forecasts.json").write_text(json.dumps(forecasts))
    return directory


def test_good_plan_is_written_then_unchanged(tmp_path, data_dir):
    rc, results, log = run_playbook(tmp_path, plan_task(data_dir))
    assert rc == 0, log
    result = results[0]
    assert result["changed"] is True
    assert result["plan"]["users"]["alice"]["node"] in ("n1", "n2")
    assert result["plan"]["users"]["bob"]["conservative"] is True
    assert "# ShadowDesk allocation plan" in result["summary"]
    latest = json.loads((data_dir / "plans" / "latest.json").read_text())
    assert latest == result["plan"]
    assert (data_dir / "plans" / "latest.summary.md").read_text() == result["summary"]
    assert pathlib.Path(result["path"]).exists()

    # Same inputs an hour later: nothing new is written.
    rc, results, log = run_playbook(tmp_path, plan_task(data_dir, now="2026-11-22T22:00:00Z"))
    assert rc == 0, log
    assert results[0]["changed"] is False
    assert len(list((data_dir / "plans").glob("plan-*.json"))) == 1


def test_check_mode_writes_nothing(tmp_path, data_dir):
    rc, results, log = run_playbook(tmp_path, plan_task(data_dir), check=True)
    assert rc == 0, log
    assert results[0]["changed"] is True and results[0]["plan"]["version"] == 1
    assert not (data_dir / "plans").exists()


def test_yaml_format(tmp_path, data_dir):
    rc, results, log = run_playbook(tmp_path, plan_task(data_dir, format="yaml"))
    assert rc == 0, log
    assert yaml.safe_load((data_dir / "plans" / "latest.yml").read_text()) == results[0]["plan"]


@pytest.mark.parametrize("overrides, message", [
    ({"nodes": [{"name": "n1", "vcpus": -1, "memory_mib": 1024}]}, "nodes[0] (n1).vcpus must be >= 0"),
    ({"forecasts": [dict(plan_data.forecast("alice"), p_low=[0.1, 0.2])]}, "p_low has 2 values but p has 48"),
    ({"forecasts": [dict(plan_data.forecast("alice"), start="next monday")]}, "not an ISO-8601 time"),
    ({"forecasts": "missing.json"}, "cannot read forecasts file"),
    ({"desktops": {"alice": {"desktop": "desk-alice"}}}, "missing the field 'max_vcpus'"),
    ({"nodes": "n1"}, "nodes"),
    ({"risk": "high"}, "risk"),
    ({"bogus": 1}, "bogus"),
])
def test_malformed_inputs_fail_without_traceback(tmp_path, data_dir, overrides, message):
    rc, results, log = run_playbook(tmp_path, plan_task(data_dir, **overrides))
    assert rc != 0
    failed = results[0]
    assert failed.get("failed") is True
    assert message in failed["msg"], failed["msg"]
    assert "Traceback" not in log and "Traceback" not in failed.get("exception", "")
    assert not (data_dir / "plans").exists()


def test_apply_playbook_reads_the_plan_with_an_injected_clock(tmp_path, data_dir):
    rc, _results, log = run_playbook(tmp_path, plan_task(data_dir))
    assert rc == 0, log
    # Before any step nothing is due, so the resource modules are not called at all.
    rc, results, log = run_playbook(tmp_path, ROOT / "playbooks" / "apply_plans.yml",
                                    ["-e", "shadowdesk_data_dir=%s" % data_dir,
                                     "-e", "shadowdesk_now=2026-11-23T01:00:00Z"])
    assert rc == 0, log
    assert not any(r.get("changed") for r in results)
    assert any("0 due" in str(r.get("msg", "")) for r in results)


def test_apply_playbook_refuses_a_corrupted_plan(tmp_path, data_dir):
    (data_dir / "plans").mkdir()
    (data_dir / "plans" / "latest.json").write_text('{"version": 1, "users": "oops"}')
    rc, results, log = run_playbook(tmp_path, ROOT / "playbooks" / "apply_plans.yml",
                                    ["-e", "shadowdesk_data_dir=%s" % data_dir,
                                     "-e", "shadowdesk_now=2026-11-23T07:30:00Z"])
    assert rc != 0
    assert "does not match the plan schema" in log and "Traceback" not in log


def test_apply_playbook_without_a_plan_says_so(tmp_path, data_dir):
    rc, _results, log = run_playbook(tmp_path, ROOT / "playbooks" / "apply_plans.yml",
                                     ["-e", "shadowdesk_data_dir=%s" % data_dir])
    assert rc != 0 and "No allocation plan at" in log


def test_apply_playbook_validates_its_inputs(tmp_path, data_dir):
    rc, _results, log = run_playbook(tmp_path, ROOT / "playbooks" / "apply_plans.yml",
                                     ["-e", "shadowdesk_data_dir=%s" % data_dir,
                                      "-e", '{"shadowdesk_apply_users": "alice", "shadowdesk_connection": 3}'])
    assert rc != 0
    assert "apply_plan_connection" in log  # the role validates what the playbook passes on


def test_forecast_playbook_plan_step_through_the_role(tmp_path, data_dir):
    extra = {"forecast_steps": ["plan"], "forecast_data_dir": str(data_dir),
             "forecast_now": plan_data.NOW, "forecast_forecasts_file": "forecasts.json",
             "forecast_desktops": plan_data.DESKTOPS, "forecast_nodes": plan_data.NODES,
             "forecast_profiles": plan_data.PROFILES}
    (tmp_path / "site.json").write_text(json.dumps(extra))
    site = ["-e", "@%s" % (tmp_path / "site.json")]
    rc, results, log = run_playbook(tmp_path, ROOT / "playbooks" / "forecast.yml", site)
    assert rc == 0, log
    assert json.loads((data_dir / "plans" / "latest.json").read_text())["users"]["alice"]["steps"]
    assert "ShadowDesk allocation plan" in log
    # The role's argument spec rejects a bad variable before anything runs.
    extra["forecast_steps"] = ["plan", "guess"]
    (tmp_path / "site.json").write_text(json.dumps(extra))
    rc, _results, log = run_playbook(tmp_path, ROOT / "playbooks" / "forecast.yml", site)
    assert rc != 0 and "forecast_steps" in log
