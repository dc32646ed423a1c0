"""Measured reconnects in the history store (both databases) and the plan times made from them."""

from __future__ import annotations

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.measured_times import measured_times
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput


def timing(path, minute, wake, resize=0.5, node="n1"):
    return {"user": "alice", "desktop": "desk-alice", "backend": "libvirt", "node": node, "path": path,
            "trigger_at": "2026-11-23T08:%02d:00.250000Z" % minute, "ready_s": wake + 0.1, "full_s": wake + (resize or 0),
            "wake_s": wake, "resize_s": resize}


def test_wake_timings_round_trip_newest_first_and_no_duplicates(db):
    with HistoryStore(db.location()) as store:
        assert store.add_wake_timing(timing("saved", 1, 0.9)) == "recorded"
        assert store.add_wake_timing(timing("paused", 2, 0.05)) == "recorded"
        assert store.add_wake_timing(timing("saved", 1, 0.9)) == "duplicate"
        rows = store.wake_timings(backend="libvirt")
        assert [r["path"] for r in rows] == ["paused", "saved"]
        assert rows[1]["wake_s"] == pytest.approx(0.9) and rows[1]["trigger_at"].microsecond == 250000
        assert store.wake_timings(backend="proxmox") == []


@pytest.mark.parametrize("bad", [dict(path="warm"), dict(user=""), dict(wake_s=-1), dict(trigger_at="08:00")])
def test_bad_wake_timings_are_clear_errors(db, bad):
    with HistoryStore(db.location()) as store:
        with pytest.raises(InvalidInput):
            store.add_wake_timing(dict(timing("saved", 1, 0.9), **bad))
        assert store.wake_timings() == []


def test_plan_times_are_medians_of_the_newest_per_kind_and_node():
    rows = [timing("saved", 9, 3.0, node="n2"), timing("saved", 8, 1.0), timing("saved", 7, 1.2),
            timing("saved", 6, 9.0), timing("paused", 5, 0.04, resize=None), timing("hit", 4, 0.0, resize=2.0)]
    times = measured_times(rows, window=3)
    assert times["pool"] == {"restore_s": 1.2, "resume_s": 0.04, "hotplug_s": 0.5}
    assert times["nodes"]["n1"]["restore_s"] == 1.2  # newest three on n1: 1.0, 1.2, 9.0
    assert times["nodes"]["n2"] == {"restore_s": 3.0, "hotplug_s": 0.5}, "resume_s never measured there"
    assert measured_times([]) == {"pool": {}, "nodes": {}, "samples": 0}
