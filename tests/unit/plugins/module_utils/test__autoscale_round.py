# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One autoscale round over a hypervisor, on libvirt's test driver loaded from a node file: every running desktop
is measured in one batch, a desktop that cannot be measured fails alone, and the states the round returns are
those of the desktops still managed there. Real guests: tests/integration/test_autoscale_live.py."""

from __future__ import annotations

import time

import pytest

libvirt = pytest.importorskip("libvirt")

from ansible_collections.shadowdesk.vdi.plugins.module_utils._autoscale_round import autoscale_round  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.libvirt import LibvirtBackend  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.autoscale_config import (  # noqa: E402
    parse_config,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import DesktopNotFound  # noqa: E402
from ansible_collections.shadowdesk.vdi.tests.stand_ins.libvirt_test_node import write_node  # noqa: E402


@pytest.fixture
def backend(tmp_path):
    uri = write_node(tmp_path / "node.xml", [
        dict(name="desk-alice", user="alice", state="running"),
        dict(name="desk-bob", user="bob", state="running"),
        dict(name="desk-carol", user="carol", state="paused"),
        dict(name="desk-dave", user="dave", state="saved"),
    ])
    be = LibvirtBackend({"uri": uri})
    yield be
    be.close()


def config():
    return parse_config({}, {"cpu_overcommit": 64.0, "memory_reserve_mib": 0.0}, {}, 180.0)


def test_one_batch_measures_every_desktop_and_an_unknown_one_fails_alone(backend):
    readings = backend.utilisation_many(["desk-alice", "desk-nobody", "desk-bob", "desk-dave"], 0.1)
    assert set(readings) == {"desk-alice", "desk-nobody", "desk-bob", "desk-dave"}
    assert isinstance(readings["desk-nobody"], DesktopNotFound)
    for name in ("desk-alice", "desk-bob"):
        assert readings[name]["state"] == "running" and readings[name]["cpu_percent"] is not None
        assert readings[name]["online_vcpus"] == 1
    assert readings["desk-dave"]["state"] == "saved" and "online_vcpus" not in readings["desk-dave"]
    with pytest.raises(DesktopNotFound):
        backend.utilisation("desk-nobody", 0.1)
    assert backend.utilisation("desk-alice", 0.1)["state"] == "running"


def test_a_round_measures_the_running_desktops_and_keeps_only_the_states_of_managed_ones(backend):
    kept = {"version": 1, "resources": {}, "counters": {"at": 1.0}}
    states = {"desk-gone": kept, "desk-carol": kept, "desk-bob": kept}
    result = autoscale_round(backend, config(), states, time.time(), check_mode=True,
                             names=["desk-alice", "desk-carol"], interval=0.1)
    by_name = {d["name"]: d for d in result["desktops"]}
    assert sorted(by_name) == ["desk-alice", "desk-carol"]
    cpu = [d for d in by_name["desk-alice"]["decisions"] if d["resource"] == "cpu"][0]
    assert by_name["desk-alice"]["skipped"] is None and cpu["usage"] is not None, by_name["desk-alice"]
    assert "paused" in by_name["desk-carol"]["skipped"]
    assert "desk-gone" not in result["states"], "a desktop no longer on the hypervisor loses its state"
    assert result["states"]["desk-bob"] == kept, "an unselected desktop keeps its state"
    assert result["states"]["desk-carol"] == kept, "a paused desktop keeps its state"
    assert result["states"]["desk-alice"]["counters"]["at"] is not None
