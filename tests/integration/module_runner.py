"""Run a collection module as a real process, the way Ansible does on a target host (minus AnsiballZ).

The module reads its arguments from a JSON file, exactly as ``hacking/test-module`` feeds them; check and diff
mode are Ansible's own internal arguments. The result is the module's real JSON output.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"


class ModuleResult(dict):
    @property
    def failed(self):
        return bool(self.get("failed"))

    @property
    def changed(self):
        return bool(self.get("changed"))


def run_module(name, args, check=False, diff=True, env=None, timeout=300):
    """Run ``shadowdesk.vdi.<name>`` with ``args``; return its parsed JSON result (a dict)."""
    payload = dict(args)
    payload["_ansible_check_mode"] = check
    payload["_ansible_diff"] = diff
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
        path = handle.name
    run_env = dict(os.environ)
    run_env["PYTHONPATH"] = str(COLLECTIONS)
    run_env.update(env or {})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ansible_collections.shadowdesk.vdi.plugins.modules.%s" % name, path],
            capture_output=True, text=True, env=run_env, timeout=timeout, check=False,
        )
    finally:
        os.unlink(path)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                             % (name, proc.returncode, proc.stdout, proc.stderr)) from None
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return ModuleResult(result)
