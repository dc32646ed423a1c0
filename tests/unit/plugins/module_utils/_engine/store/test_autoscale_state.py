"""The autoscale policy's memory in the history store (both databases): per hypervisor, per desktop."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = datetime.timezone.utc
T1 = "2026-11-23T08:00:00Z"
T2 = "2026-11-23T08:01:00Z"


def state(low_readings, at=1795420800.0):
    """The shape the autoscale round returns per desktop (trimmed)."""
    return {"version": 1, "counters": {"at": at, "disks": {}, "nets": {}},
            "resources": {"cpu": {"low_readings": low_readings, "last_change_at": None,
                                  "histogram": {"weights": [0.5, 1.25], "total": 1.75}}}}


def test_states_round_trip_per_hypervisor(db):
    with HistoryStore(db.location()) as store:
        assert store.autoscale_states("libvirt qemu:///system on h1") == {}
        outcome = store.save_autoscale_states("libvirt qemu:///system on h1", {"desk-a": state(1), "desk-b": state(0)},
                                              at=T1)
        assert outcome == {"saved": ["desk-a", "desk-b"], "dropped": [], "unchanged": 0, "conflicts": []}
        store.save_autoscale_states("libvirt qemu:///system on h2", {"desk-a": state(2)}, at=T1)
        assert store.autoscale_states("libvirt qemu:///system on h1") == {"desk-a": state(1), "desk-b": state(0)}
        assert store.autoscale_states("libvirt qemu:///system on h2") == {"desk-a": state(2)}, \
            "same desktop name on another hypervisor is another row"


def test_a_desktop_the_round_no_longer_returns_is_dropped_and_equal_states_are_not_rewritten(db):
    with HistoryStore(db.location()) as store:
        store.save_autoscale_states("pve", {"desk-a": state(1), "desk-gone": state(0)}, at=T1)
        store.save_autoscale_states("other", {"desk-gone": state(0)}, at=T1)
        outcome = store.save_autoscale_states("pve", {"desk-a": state(1), "desk-new": state(0)}, at=T2)
        assert outcome == {"saved": ["desk-new"], "dropped": ["desk-gone"], "unchanged": 1, "conflicts": []}
        assert sorted(store.autoscale_states("pve")) == ["desk-a", "desk-new"]
        assert store.autoscale_states("other") == {"desk-gone": state(0)}, "only this hypervisor's rows go"
        times = store.autoscale_state_times("pve")
        assert times["desk-a"] == datetime.datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # unchanged: not rewritten
        assert times["desk-new"] == datetime.datetime(2026, 11, 23, 8, 1, tzinfo=UTC)

        changed = store.save_autoscale_states("pve", {"desk-a": state(2), "desk-new": state(0)}, at=T2)
        assert changed == {"saved": ["desk-a"], "dropped": [], "unchanged": 1, "conflicts": []}
        assert store.autoscale_states("pve")["desk-a"] == state(2)
        assert store.save_autoscale_states("pve", {}, at=T2) == {"saved": [], "dropped": ["desk-a", "desk-new"],
                                                                 "unchanged": 0, "conflicts": []}
        assert store.autoscale_states("pve") == {}


def test_a_round_never_puts_back_what_an_overlapping_round_wrote_meanwhile(db):
    location = db.location()
    with HistoryStore(location) as store:
        store.save_autoscale_states("h", {"desk-a": state(0), "desk-b": state(0), "desk-c": state(0)}, at=T1)
        loaded, versions = store.load_autoscale_states("h")  # the slow round starts
        assert loaded == {"desk-a": state(0), "desk-b": state(0), "desk-c": state(0)} and sorted(versions) == [
            "desk-a", "desk-b", "desk-c"]
    with HistoryStore(location) as other:  # a faster, overlapping round of the same hypervisor finishes first
        other.save_autoscale_states("h", {"desk-a": state(5), "desk-b": state(0), "desk-c": state(0),
                                          "desk-new": state(1)}, at=T2)  # b and c unchanged: not rewritten
    with HistoryStore(location) as store:  # the slow round saves what it computed from the older states
        outcome = store.save_autoscale_states("h", {"desk-a": state(1), "desk-b": state(1), "desk-c": state(1)},
                                              versions=versions)
        assert outcome == {"saved": ["desk-b", "desk-c"], "dropped": [], "unchanged": 0,
                           "conflicts": ["desk-a", "desk-new"]}
        assert store.autoscale_states("h") == {"desk-a": state(5), "desk-b": state(1), "desk-c": state(1),
                                               "desk-new": state(1)}, "the other round's newer rows are kept"


def test_a_row_another_round_dropped_is_not_brought_back(db):
    with HistoryStore(db.location()) as store:
        store.save_autoscale_states("h", {"desk-a": state(0), "desk-b": state(0)}, at=T1)
        _loaded, versions = store.load_autoscale_states("h")
        store.save_autoscale_states("h", {"desk-a": state(0)}, at=T2)  # the other round: desk-b was removed
        outcome = store.save_autoscale_states("h", {"desk-a": state(0), "desk-b": state(2)}, versions=versions)
        assert outcome["conflicts"] == ["desk-b"] and "desk-b" not in store.autoscale_states("h")


def test_states_survive_reopening_the_store(db):
    location = db.location()
    with HistoryStore(location) as store:
        store.save_autoscale_states("h", {"desk-a": state(1)})
    with HistoryStore(location, read_only=True) as store:
        assert store.autoscale_states("h") == {"desk-a": state(1)}
        with pytest.raises(InvalidInput, match="read-only"):
            store.save_autoscale_states("h", {"desk-a": state(2)})
    with HistoryStore(location) as store:
        assert store.autoscale_states("h") == {"desk-a": state(1)}, "a refused check-mode write changed nothing"


def test_an_unreadable_stored_state_is_left_out_and_overwritten(db):
    location = db.location()
    with HistoryStore(location) as store:
        store.save_autoscale_states("h", {"desk-a": state(1), "desk-b": state(0)}, at=T1)
    raw = db.raw(location)
    try:
        raw.execute("UPDATE autoscale_state SET state = ? WHERE desktop = ?", ("{not json", "desk-b"))
    finally:
        raw.close()
    with HistoryStore(location) as store:
        assert store.autoscale_states("h") == {"desk-a": state(1)}
        assert store.save_autoscale_states("h", {"desk-a": state(1), "desk-b": state(3)}, at=T2)["saved"] == ["desk-b"]
        assert store.autoscale_states("h")["desk-b"] == state(3)


@pytest.mark.parametrize("hypervisor, states, words", [
    ("", {"desk-a": {}}, "hypervisor key"),
    (None, {"desk-a": {}}, "hypervisor key"),
    ("h", ["desk-a"], "dict of desktop"),
    ("h", {"": {}}, "desktop name"),
    ("h", {"desk-a": "hot"}, "must be a dict"),
    ("h", {"desk-a": {"x": float("nan")}}, "not plain JSON"),
    ("h", {"desk-a": {"x": object()}}, "not plain JSON"),
])
def test_bad_states_are_clear_errors_and_write_nothing(db, hypervisor, states, words):
    with HistoryStore(db.location()) as store:
        store.save_autoscale_states("h", {"desk-keep": state(1)}, at=T1)
        with pytest.raises(InvalidInput, match=words):
            store.save_autoscale_states(hypervisor, states)
        assert store.autoscale_states("h") == {"desk-keep": state(1)}
