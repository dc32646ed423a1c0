# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How one due plan action is applied: order, refusals."""

from __future__ import annotations

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_actions import (
    POWER, RESIZE, batches, check_action, planned_move, power_steps, work_order,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import Conflict, DesktopNotFound, InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import DesktopFacts

STAGES = {"shadow": {"vcpus": 1}, "full": {"vcpus": 4}}


def action(**kw):
    base = dict(desktop="desk-alice", user="alice", state="running", stage="full", stages=STAGES)
    base.update(kw)
    return base


def facts(state="saved", user="alice"):
    return DesktopFacts(name="desk-alice", backend="libvirt", state=state, user=user, max_vcpus=4)


@pytest.mark.parametrize("state", ["saved", "paused", "stopped"])
def test_a_release_is_shrunk_before_it_is_saved(state):
    assert work_order(action(state=state, stage="shadow")) == [RESIZE, POWER]


@pytest.mark.parametrize("state", ["running", None])
def test_a_wake_is_restored_before_it_is_raised(state):
    assert work_order(action(state=state)) == [POWER, RESIZE]


def test_without_a_stage_only_the_power_state_is_applied():
    assert work_order(action(stage=None)) == [POWER]


@pytest.mark.parametrize("bad, message", [
    (dict(desktop=""), "has no desktop"),
    (dict(state="absent"), "wants state 'absent'"),
    (dict(stage="turbo"), "not in its stages"),
])
def test_impossible_actions_are_refused(bad, message):
    with pytest.raises(InvalidInput, match=message):
        check_action(action(**bad))


def test_power_steps_follow_the_lifecycle():
    assert power_steps(action(), facts("saved")) == ["start"]
    assert power_steps(action(state="saved"), facts("running")) == ["save"]
    assert power_steps(action(), facts("running")) == []
    assert power_steps(action(state=None), facts("saved")) == []


def test_a_plan_never_creates_a_desktop():
    with pytest.raises(DesktopNotFound, match="does not create"):
        power_steps(action(), None)


def test_a_plan_never_touches_another_users_desktop():
    with pytest.raises(Conflict, match="belongs to user bob"):
        power_steps(action(), facts(user="bob"))


def test_a_plan_never_discards_a_saved_session():
    with pytest.raises(Conflict, match="never discards"):
        power_steps(action(state="stopped"), facts("saved"))


def test_one_batch_per_connection():
    actions = [action(desktop="a", node="kvm1"), action(desktop="b", node="kvm2"), action(desktop="c", node="kvm1"),
               action(desktop="d", node=None), action(desktop="e", node="kvm3")]
    groups = batches(actions, {"kvm1": {"uri": "qemu+ssh://kvm1/system"}, "kvm2": {"uri": "qemu+ssh://kvm2/system"}})
    assert [(g["connection"], g["nodes"], [a["desktop"] for a in g["actions"]]) for g in groups] == [
        ({"uri": "qemu+ssh://kvm1/system"}, ["kvm1"], ["a", "c"]),
        ({"uri": "qemu+ssh://kvm2/system"}, ["kvm2"], ["b"]),
        ({}, ["kvm3"], ["d", "e"]),
    ]


def test_a_whole_cluster_behind_one_endpoint_is_one_batch():
    actions = [action(desktop=str(i), node="pve%d" % (i % 3)) for i in range(9)]
    assert len(batches(actions, {})) == 1


def test_malformed_node_connections_are_refused():
    with pytest.raises(InvalidInput, match="must be a dict"):
        batches([action(node="kvm1")], {"kvm1": "qemu:///system"})


def on_node(node, state="saved"):
    return DesktopFacts(name="desk-alice", backend="proxmox", state=state, user="alice", max_vcpus=4, node=node)


def test_a_wake_moves_the_desktop_to_the_planned_node():
    assert planned_move(action(node="pve2"), on_node("pve1")) == "pve2"
    assert planned_move(action(node="pve2", stage=None), on_node("pve1", "stopped")) == "pve2"


@pytest.mark.parametrize("planned, where", [("pve1", "pve1"), (None, "pve1"), ("", "pve1"), ("pve2", None)])
def test_no_move_without_a_different_known_node(planned, where):
    assert planned_move(action(node=planned), on_node(where)) is None


@pytest.mark.parametrize("release", [dict(state="saved", stage="shadow"), dict(state="paused", stage="shadow"),
                                     dict(state="stopped", stage="shadow"),
                                     dict(state="running", stage="shadow", release=True)])
def test_a_release_never_moves_a_desktop(release):
    assert planned_move(action(node="pve2", **release), on_node("pve1", "running")) is None


def test_no_move_for_a_desktop_that_does_not_exist():
    assert planned_move(action(node="pve2"), None) is None
