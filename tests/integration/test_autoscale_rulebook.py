"""The autoscale round run continuously by a real ansible-rulebook process (the shipped autoscale rulebook and its
tick source), against libvirt's test driver defined from a node file; the policy state is carried round to round
through the history store, as under cron."""

from __future__ import annotations

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.tests.stand_ins.libvirt_test_node import write_node
from integration.eda_rulebook import ROOT, Rulebook, wait_until

pytestmark = [pytest.mark.playbook]

AUTOSCALE_RULEBOOK = ROOT / "extensions" / "eda" / "rulebooks" / "autoscale.yml"


def test_the_rulebook_runs_one_round_per_tick_and_keeps_the_state(tmp_path):
    desktops = [dict(name="desk-one", user="one", state="running"), dict(name="desk-two", user="two", state="saved")]
    uri = write_node(tmp_path / "node.xml", desktops)
    data_dir = tmp_path / "data"
    env = {"SHADOWDESK_BACKEND": "libvirt", "LIBVIRT_DEFAULT_URI": uri, "SHADOWDESK_DATA_DIR": str(data_dir)}
    # the test driver cannot set CPU quotas: bound the CPU to what the desktop has (the decision is still made)
    variables = {"shadowdesk_autoscale_tick": 2, "shadowdesk_autoscale_bounds": {"cpu": {"min": 1, "max": 1}}}
    with Rulebook(tmp_path, env, rulebook=AUTOSCALE_RULEBOOK, variables=variables) as rb:
        wait_until(lambda: rb.plays_finished() >= 2, 240, "two autoscale rounds", rb.log)
        with HistoryStore(str(data_dir / "history.sqlite3"), read_only=True) as store:
            states = store.autoscale_states("libvirt %s on localhost" % uri)
        log = rb.full_log()
        assert rb.failed_plays() == [], rb.log()
    assert "'tick': 1}" in log and "'tick': 2}" in log, log[-3000:]
    # each round adds one CPU reading to the histogram it read from the store: two rounds or more, carried over
    weights = states["desk-one"]["resources"]["cpu"]["overall"]["weights"]
    assert sum(weights.values()) >= 1.99, states["desk-one"]
    assert log.count("desk-one: cpu hold") >= 2, log[-3000:]  # a decision in every round
    assert "desk-two: the desktop is saved: left alone" in log
