import re

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.resources import (
    parse_target, predicted, resolve_stage, resource_changes, split_already_pending,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    DesktopFacts, DiskInfo, DiskLimit, NetLimit, Resources,
)


def facts(state="running", vcpus=1, memory=2048, cpu_limit=0.0, config=None, **kw):
    live = Resources(vcpus=vcpus, memory_mib=memory, cpu_limit=cpu_limit, net={"net0": NetLimit()},
                     disk_io={"disk0": DiskLimit()}, gpu=[])
    return DesktopFacts(
        name="desk-a", backend="test", state=state, user="a", max_vcpus=4, max_memory_mib=8192,
        live=live, config=config or Resources.from_dict(live.to_dict()), interfaces=["net0"],
        disks=[DiskInfo(key="disk0", target="vda")], **kw)


def fields(changes):
    return [(c.field, c.key, c.before, c.after) for c in changes]


def test_grow_hot_adds_vcpus_and_balloons_memory():
    changes = resource_changes(facts(), Resources(vcpus=4, memory_mib=8192))
    assert fields(changes) == [("vcpus", None, 1, 4), ("memory_mib", None, 2048, 8192)]


def test_shrink_vcpus_uses_a_cpu_limit_never_an_unplug():
    changes = resource_changes(facts(vcpus=4), Resources(vcpus=2))
    assert fields(changes) == [("cpu_limit", None, 0.0, 2.0)]


def test_growing_back_lifts_the_limit_without_touching_online_vcpus():
    changes = resource_changes(facts(vcpus=4, cpu_limit=2.0), Resources(vcpus=4))
    assert fields(changes) == [("cpu_limit", None, 2.0, 0.0)]


def test_reaching_the_target_means_no_change():
    assert resource_changes(facts(vcpus=4, cpu_limit=2.0), Resources(vcpus=2)) == []
    assert resource_changes(facts(), Resources(vcpus=1, memory_mib=2048)) == []


@pytest.mark.parametrize("target, message", [
    (Resources(vcpus=5), "maximum vCPUs"),
    (Resources(vcpus=0), "outside 1..4"),
    (Resources(memory_mib=9000), "maximum memory"),
    (Resources(net={"net3": NetLimit(100)}), "no network interface net3"),
    (Resources(disk_io={"disk9": DiskLimit(1, 1)}), "no disk disk9"),
    (Resources(cpu_limit=-1), "cpu_limit"),
])
def test_impossible_targets_are_rejected_with_a_clear_message(target, message):
    with pytest.raises(InvalidInput, match=message):
        resource_changes(facts(), target)


def test_device_limits_and_gpu():
    target = Resources(net={"net0": NetLimit(1000)}, disk_io={"disk0": DiskLimit(500, 10**7)},
                       gpu=["0000:65:00.0"])
    changes = resource_changes(facts(), target)
    assert [(c.field, c.key) for c in changes] == [("net", "net0"), ("disk_io", "disk0"), ("gpu", None)]
    after = predicted(facts().live, changes)
    assert after.net["net0"].rate_kib_s == 1000 and after.disk_io["disk0"].total_iops == 500
    assert after.gpu == ["0000:65:00.0"]


def test_a_gpu_waiting_in_the_definition_is_reported_pending_not_changed_again():
    f = facts(config=Resources(vcpus=1, memory_mib=2048, cpu_limit=0.0, gpu=["0000:65:00.0"]))
    changes = resource_changes(f, Resources(gpu=["0000:65:00.0"]))
    assert fields(changes) == [("gpu", None, [], ["0000:65:00.0"])]
    changes[0].mode = "pending"
    assert split_already_pending(f, changes) == ([], changes)
    off = facts(state="shutoff", config=Resources(vcpus=1, memory_mib=2048, cpu_limit=0.0, gpu=["0000:65:00.0"]))
    assert resource_changes(off, Resources(gpu=["0000:65:00.0"])) == []


def test_a_change_already_pending_in_the_definition_is_not_a_new_change():
    # e.g. Proxmox without memory hot-plug: the new size waits in [PENDING] while the guest keeps 2048
    f = facts(config=Resources(vcpus=1, memory_mib=4096, cpu_limit=0.0))
    changes = resource_changes(f, Resources(memory_mib=4096))
    assert fields(changes) == [("memory_mib", None, 2048, 4096)]
    changes[0].mode = "pending"
    to_apply, waiting = split_already_pending(f, changes)
    assert to_apply == [] and waiting == changes
    changes[0].mode = "live"  # a live-able change is retried, not parked
    assert split_already_pending(f, changes) == (changes, [])


def test_inactive_desktops_compare_against_their_definition():
    config = Resources(vcpus=2, memory_mib=4096, cpu_limit=0.0)
    changes = resource_changes(facts(state="shutoff", config=config), Resources(vcpus=2, memory_mib=4096))
    assert changes == []


def test_stages():
    stages = {"shadow": {"vcpus": 1, "memory_mib": 2048}, "full": {"vcpus": 4, "memory_mib": 8192}}
    assert resolve_stage(stages, "full").vcpus == 4
    with pytest.raises(InvalidInput, match="stage 'warm'"):
        resolve_stage(stages, "warm")
    with pytest.raises(InvalidInput, match="malformed"):
        resolve_stage({"x": {"cores": 3}}, "x")


# -- parse_target: values Ansible's type checks never see (issue 12.6/12.7) --------------------------------------
@pytest.mark.parametrize("data,match", [
    ({"net": {"net0": {"rate_kib_s": "abc"}}}, "net.net0.rate_kib_s='abc' is not a whole number"),
    ({"disk_io": {"disk0": {"total_iops": 10 ** 20}}}, "outside 0..1000000000000000"),
    ({"disk_io": {"disk0": {"total_iops": 1.5}}}, "1.5 is not a whole number"),
    ({"disk_io": {"disk0": None}}, "must be a dict of limits"),
    ({"disk_io": {"disk0": {}}}, "takes total_iops and/or total_bytes_sec"),
    ({"disk_io": {"disk0": {"iops": 3}}}, "takes total_iops"),
    ({"net": ["net0"]}, "must be a dict keyed by device"),
    ({"vcpus": "two"}, "vcpus='two' is not a whole number"),
    ({"vcpus": True}, "not a whole number"),
    ({"cpu_limit": 0.000001}, "multiple of 0.01"),
    ({"cpu_limit": float("nan")}, "finite"),
    ({"cpu_limit": -1}, "finite number >= 0"),
    ({"gpu": "0000:01:00.0"}, "must be a list"),
    ({"cores": 2}, "unknown keys cores"),
])
def test_parse_target_refuses_what_cannot_be_applied_exactly(data, match):
    with pytest.raises(InvalidInput, match=re.escape(match)):
        parse_target(data, "")


def test_parse_target_accepts_yaml_and_jinja_forms():
    target = parse_target({"vcpus": "2", "memory_mib": 512.0, "cpu_limit": "1.5",
                           "net": {"net0": {"rate_kib_s": "100"}}, "disk_io": {"disk0": {"total_iops": 10 ** 15}}})
    assert (target.vcpus, target.memory_mib, target.cpu_limit) == (2, 512, 1.5)
    assert target.net["net0"].rate_kib_s == 100
    assert target.disk_io["disk0"].to_dict() == {"total_iops": 10 ** 15, "total_bytes_sec": 0}


def test_stage_values_are_checked_like_direct_options():
    with pytest.raises(InvalidInput, match=re.escape("stage 'full'.vcpus='two' is not a whole number")):
        resolve_stage({"full": {"vcpus": "two"}}, "full")
    assert resolve_stage({"full": {"memory_mib": "512"}}, "full").memory_mib == 512
