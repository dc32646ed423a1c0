# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batched apply over one backend connection, on libvirt's test driver loaded from a node file.

``test:///PATH`` keeps its state for one connection, which is what one ``plan_apply`` call uses. Real-libvirtd and
PVE stand-in runs are in tests/integration/test_plan_apply.py.
"""

from __future__ import annotations

import pytest

libvirt = pytest.importorskip("libvirt")

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.libvirt import LibvirtBackend  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (  # noqa: E402
    BackendUnavailable, OperationRefused,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._plan_apply import (  # noqa: E402
    apply_actions, summarise,
)
from ansible_collections.shadowdesk.vdi.tests.stand_ins.libvirt_test_node import write_node  # noqa: E402

STAGES = {"shadow": {"vcpus": 1, "memory_mib": 2048}, "full": {"vcpus": 4, "memory_mib": 8192}}


@pytest.fixture
def backend(tmp_path):
    uri = write_node(tmp_path / "node.xml", [
        dict(name="desk-alice", user="alice", state="saved"),
        dict(name="desk-bob", user="bob", state="running", vcpus=1),
        dict(name="desk-carol", user="carol", state="paused"),
    ])
    be = LibvirtBackend({"uri": uri})
    yield be
    be.close()


def act(desktop, user, state, stage):
    return dict(desktop=desktop, user=user, state=state, stage=stage, stages=STAGES)


ACTIONS = [act("desk-alice", "alice", "running", "full"), act("desk-bob", "bob", "saved", "shadow"),
           act("desk-gone", "dave", "running", "full"), act("desk-carol", "mallory", "running", "full")]


def states(backend):
    return {f.name: (f.state, f.live.vcpus, f.live.memory_mib) for f in backend.list()}


def test_check_mode_predicts_and_changes_nothing(backend):
    before = states(backend)
    records = apply_actions(backend, ACTIONS, check_mode=True)
    assert states(backend) == before
    alice = records[0]
    assert alice["changed"] and alice["steps"] == ["start"]
    assert [(c["field"], c["after"], c["mode"]) for c in alice["changes"]] == [
        ("vcpus", 4, "live"), ("memory_mib", 8192, "live")]
    assert alice["after"]["state"] == "running" and alice["after"]["resources"]["vcpus"] == 4


def test_every_desktop_is_applied_and_a_failing_one_stops_none_of_the_others(backend):
    records = apply_actions(backend, ACTIONS, workers=3)
    assert [r["desktop"] for r in records] == [a["desktop"] for a in ACTIONS]
    assert states(backend)["desk-alice"] == ("running", 4, 8192)
    assert states(backend)["desk-bob"][0] == "saved"
    assert states(backend)["desk-carol"][0] == "paused", "another user's desktop is left alone"
    failed = {r["desktop"]: r["error_type"] for r in records if r["failed"]}
    assert failed == {"desk-gone": "DesktopNotFound", "desk-carol": "Conflict"}
    assert summarise(records) == {"desktops": 4, "changed": 2, "failed": 2, "unchanged": 0}
    rerun = apply_actions(backend, ACTIONS[:2])
    assert not any(r["changed"] for r in rerun), "a rerun changes nothing"


def test_a_refused_step_is_reported_with_what_was_done_before_it(backend, monkeypatch):
    def refuse(facts, changes):
        raise OperationRefused("hot-plug refused by the guest")
    monkeypatch.setattr(backend, "apply", refuse)
    record = apply_actions(backend, ACTIONS[:1])[0]
    assert record["failed"] and record["steps"] == ["start"] and "hot-plug refused" in record["msg"]
    assert states(backend)["desk-alice"][0] == "running"


def test_an_unreachable_hypervisor_fails_the_batch_at_once(tmp_path):
    backend = LibvirtBackend({"uri": "test://%s" % (tmp_path / "missing.xml")})
    with pytest.raises(BackendUnavailable):
        apply_actions(backend, ACTIONS)


def test_actions_on_one_desktop_never_run_at_the_same_time(backend, monkeypatch):
    """Two actions on desk-bob (its owner's release, and another user's wake the ownership check refuses): the
    second reads desk-bob only after the save of the first finished, never half-way through it."""
    import threading
    import time

    busy, overlaps, real_get, real_save = set(), [], backend.get, backend.save
    guard = threading.Lock()

    def watched(fn):
        def call(name, *args):
            with guard:
                if name in busy:
                    overlaps.append(name)
                busy.add(name)
            try:
                time.sleep(0.05)  # widen the window a race would need
                return fn(name, *args)
            finally:
                with guard:
                    busy.discard(name)
        return call

    monkeypatch.setattr(backend, "get", watched(real_get))
    monkeypatch.setattr(backend, "save", watched(real_save))
    actions = [act("desk-alice", "alice", "running", "full"), act("desk-bob", "bob", "saved", "shadow"),
               act("desk-bob", "mallory", "running", "full"), act("desk-carol", "carol", "running", "full")]
    records = apply_actions(backend, actions, workers=4)
    assert overlaps == []
    assert records[1]["steps"] == ["save"] and records[2]["error_type"] == "Conflict"
    assert "belongs to user bob" in records[2]["msg"]
