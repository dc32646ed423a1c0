"""Helpers of the session-flow tests: run the collection's playbooks as real ansible-playbook processes."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(pathlib.Path(sys.executable).parent / "ansible-playbook")


class PlaybookRun:
    def __init__(self, proc):
        self.proc = proc
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.output = proc.stdout + proc.stderr
        recap = re.search(r"localhost\s*: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", proc.stdout)
        self.changed = int(recap.group(2)) if recap else None
        self.failed = int(recap.group(3)) if recap else None

    def ok(self):
        assert self.rc == 0, self.output[-6000:]
        assert "Traceback" not in self.output, self.output[-6000:]
        return self


def run_playbook(name, tmp_path, extra, env=None, check=False, timeout=600):
    """``ansible-playbook shadowdesk.vdi.<name> -e @vars.yml``; returns a PlaybookRun (not asserted)."""
    vars_file = tmp_path / ("vars-%s-%d.yml" % (name, len(list(tmp_path.glob("vars-*")))))
    vars_file.write_text(yaml.safe_dump(extra))
    argv = [ANSIBLE_PLAYBOOK, "shadowdesk.vdi.%s" % name, "-e", "@%s" % vars_file]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=str(ROOT), timeout=timeout, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", **(env or {})))
    return PlaybookRun(proc)


def result_fact(run, name):
    """The JSON a role printed with ``debug: var=<name>`` (last occurrence)."""
    match = re.findall(r'"%s": (\{.*?\n    \})' % re.escape(name), run.stdout, re.S)
    assert match, run.stdout[-3000:]
    return yaml.safe_load(match[-1])
