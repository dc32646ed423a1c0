"""The autoscale policy: one test per failure of the known autoscalers' users (issue 8's checklist), and more."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import autoscale as pol
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.autoscale_config import parse_config
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.autoscale_desktop import (
    decide_desktop, readings,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.usage_histogram import DecayingHistogram
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    DesktopFacts, DiskInfo, DiskLimit, NetLimit, Resources,
)

T0 = 1_780_000_000.0  # a Tuesday
ROOM = {"cpus": 16.0, "memory_mib": 65536.0}


def desk(state="running", vcpus=1, memory=2048, cpu_limit=0.0, max_vcpus=4, max_memory=8192):
    live = Resources(vcpus=vcpus, memory_mib=memory, cpu_limit=cpu_limit, net={"net0": NetLimit()},
                     disk_io={"disk0": DiskLimit(total_iops=100)})
    return DesktopFacts(name="desk-a", backend="test", state=state, max_vcpus=max_vcpus, max_memory_mib=max_memory,
                        live=live, config=Resources.from_dict(live.to_dict()), interfaces=["net0"],
                        disks=[DiskInfo(key="disk0", target="vda")])


def util(at=None, cpu_percent=10.0, online=1, total=2000.0, free=1500.0, disks=None, nets=None):
    memory = {} if total is None else {"available_mib": total, "unused_mib": free, "actual_mib": total}
    return {"sampled_at": at, "cpu_percent": cpu_percent, "online_vcpus": online, "memory": memory,
            "disks": disks or {}, "nets": nets or {}}


def by_resource(decision):
    return {d.to_dict()["resource"]: d for d in decision.decisions}


def run(facts, samples, config=None, state=None, room="host with room", stage=None):
    """Feed readings one a minute; return the decisions and the final state."""
    config = config or parse_config()
    room = ROOM if room == "host with room" else room
    out = []
    for i, sample in enumerate(samples):
        now = T0 + 60 * i
        if sample is not None and sample.get("sampled_at") is None:
            sample = dict(sample, sampled_at=now)
        decision = decide_desktop(facts, sample, state, config, now, stage=stage, host_room=room)
        state = json.loads(json.dumps(decision.state))  # through JSON, as in the history store
        out.append(decision)
    return out, state


# -- the checklist -------------------------------------------------------------------------------------------------

def test_an_unreadable_cpu_metric_is_not_zero_percent():
    facts = desk(vcpus=4)
    decisions, _state = run(facts, [util(None, cpu_percent=None, online=4, total=None) for _i in range(30)])
    for decision in decisions:
        cpu = by_resource(decision)["cpu"]
        assert cpu.action == pol.HOLD and cpu.after == 4.0 and "missing" in cpu.reason
        assert not decision.changes


def test_a_garbage_metric_is_missing_too():
    garbage = {"sampled_at": "2026-11-29T10:00:00Z", "cpu_percent": "n/a", "online_vcpus": 2,
               "memory": {"available_mib": -5, "unused_mib": 1}}
    reading, _counters = readings(garbage, None)
    assert reading["cpu"] is None and reading["memory"] is None
    assert readings({"cpu_percent": 50.0, "online_vcpus": 2}, None)[0]["at"] is None


@pytest.mark.parametrize("state", ["paused", "saved", "shutoff"])
def test_stopped_or_paused_desktops_are_left_alone(state):
    decision = decide_desktop(desk(state=state), util(T0, cpu_percent=100.0), {"x": 1}, parse_config(), T0,
                              host_room=ROOM)
    assert decision.skipped and state in decision.skipped and not decision.decisions
    assert decision.state == {"x": 1}  # what it learnt is kept, nothing new


def test_cooldowns_are_per_resource():
    # CPU just grew; memory must still grow at once when it runs short.
    facts = desk(vcpus=1, memory=1024)
    decisions, state = run(facts, [util(None, cpu_percent=100.0, total=1024.0, free=800.0)])
    assert by_resource(decisions[0])["cpu"].action == pol.UP
    facts = desk(vcpus=2, memory=1024)
    config = parse_config(policy={"up_cooldown_s": 600})
    decision = decide_desktop(facts, util(T0 + 60, cpu_percent=100.0, online=2, total=1024.0, free=24.0), state,
                              config, T0 + 60, host_room=ROOM)
    res = by_resource(decision)
    assert res["cpu"].action == pol.HOLD and "cooldown" in res["cpu"].reason
    assert res["memory"].action == pol.UP


def test_the_balloon_is_never_set_above_the_assigned_memory():
    facts = desk(memory=8000, max_memory=8192)
    decisions, _state = run(facts, [util(None, total=8000.0, free=10.0)])
    mem = by_resource(decisions[0])["memory"]
    assert mem.after <= 8192
    assert decisions[0].target.memory_mib in (None, 8192)
    assert any("at most" in w for w in decisions[0].warnings)


def test_memory_never_goes_below_used_plus_margin():
    # Idle CPU and a long quiet history: memory comes down, but never under used + max(256, 10 %).
    facts = desk(memory=8192)
    samples = [util(None, total=8192.0, free=8192.0 - 3000.0) for _i in range(120)]
    decisions, _state = run(facts, samples, config=parse_config(policy={"down_cooldown_s": 0}))
    downs = [by_resource(d)["memory"] for d in decisions if by_resource(d)["memory"].action == pol.DOWN]
    assert downs, "memory should come down from 8192 MiB when 3000 are used"
    assert all(d.after >= 3000 + 300 for d in downs)


def test_changes_are_never_silently_pending():
    # The policy's target only ever asks for what can be live: vCPUs up to the maximum, quota, balloon.
    decision = run(desk(vcpus=1), [util(None, cpu_percent=100.0)])[0][0]
    assert decision.target.vcpus == 2 and decision.target.cpu_limit == 1.2  # hot-add one, quota to 1.2
    assert decision.target.memory_mib is None and decision.target.gpu is None


def test_cooldowns_survive_a_restart():
    facts = desk(vcpus=2)
    _decisions, state = run(facts, [util(None, cpu_percent=100.0, online=2)])
    assert state["resources"]["cpu"]["last_change_at"] == T0
    restored = pol.ResourceState.from_dict(json.loads(json.dumps(state["resources"]["cpu"])))
    assert restored.last_change_at == T0 and restored.overall.total > 0


# -- fast up, slow down ----------------------------------------------------------------------------------------------

def test_saturation_scales_up_at_once_and_says_why():
    decision = run(desk(vcpus=2), [util(None, cpu_percent=96.0, online=2)])[0][0]
    cpu = by_resource(decision)["cpu"]
    assert cpu.action == pol.UP and cpu.after == 2.4 and "saturated" in cpu.reason  # x up_step 1.2
    assert decision.target.vcpus == 3 and decision.target.cpu_limit == 2.4  # hot-add, capped by a quota


def test_down_waits_for_low_readings_and_the_cooldown_then_uses_a_quota():
    facts = desk(vcpus=4)
    config = parse_config(policy={"down_after": 3, "down_cooldown_s": 0, "min_overall_weight": 1,
                                  "min_slot_weight": 1})
    decisions, _state = run(facts, [util(None, cpu_percent=5.0, online=4) for _i in range(3)], config=config)
    actions = [by_resource(d)["cpu"].action for d in decisions]
    assert actions == [pol.HOLD, pol.HOLD, pol.DOWN]
    assert "1 of 3" in by_resource(decisions[0])["cpu"].reason
    target = decisions[-1].target
    assert target.vcpus == 4 and 0 < target.cpu_limit < 4  # never unplug: a quota on the 4 online vCPUs


def test_down_respects_the_cooldown_after_a_change():
    facts = desk(vcpus=4, cpu_limit=0.0)
    config = parse_config(policy={"down_after": 1, "down_cooldown_s": 900, "min_overall_weight": 1,
                                  "min_slot_weight": 1})
    state = {"resources": {"cpu": pol.ResourceState(last_change_at=T0 - 60).to_dict()}}
    decision = decide_desktop(facts, util(T0, cpu_percent=1.0, online=4), state, config, T0, host_room=ROOM)
    cpu = by_resource(decision)["cpu"]
    assert cpu.action == pol.HOLD and "cooldown" in cpu.reason


def test_down_steps_at_most_down_step_and_stays_within_hysteresis():
    state = pol.ResourceState()
    params = pol.PolicyParams(down_after=1, down_cooldown_s=0, min_overall_weight=1, min_slot_weight=1,
                              down_step=0.5)
    bounds = pol.Bounds(0.1, 8.0, 0.05)
    result = pol.decide_resource("cpu", 0.1, 8.0, T0, state, bounds, params)
    assert result.action == pol.DOWN and result.after == 4.0  # half of 8, not straight to 0.1
    # Within the band nothing moves.
    state = pol.ResourceState()
    for i in range(10):
        result = pol.decide_resource("cpu", 0.8, 1.0, T0 + 60 * i, state, bounds, params)
    assert result.action == pol.HOLD and "band" in result.reason


# -- bounds ----------------------------------------------------------------------------------------------------------

def test_plan_stage_is_a_floor():
    facts = desk(vcpus=2, memory=4096)
    config = parse_config(policy={"down_after": 1, "down_cooldown_s": 0, "min_overall_weight": 1,
                                  "min_slot_weight": 1})
    stage = Resources(vcpus=2, memory_mib=4096)
    decisions, _state = run(facts, [util(None, cpu_percent=1.0, online=2, total=4096.0, free=4000.0)] * 5,
                            config=config, stage=stage)
    assert all(not d.changes for d in decisions)
    assert "floor" in by_resource(decisions[-1])["cpu"].reason or by_resource(decisions[-1])["cpu"].action == "hold"


def test_host_room_caps_growth_and_unknown_capacity_grows_nothing():
    decision = run(desk(vcpus=1), [util(None, cpu_percent=100.0)], room={"cpus": 0.1, "memory_mib": 0})[0][0]
    assert by_resource(decision)["cpu"].after == 1.1
    decision = run(desk(vcpus=1), [util(None, cpu_percent=100.0)], room=None)[0][0]
    assert not decision.changes and "host capacity unknown" in " ".join(decision.warnings)


def test_configured_cpu_max_is_a_ceiling():
    decision = run(desk(vcpus=1), [util(None, cpu_percent=100.0)], config=parse_config(bounds={"cpu": {"max": 1.2}}))
    assert by_resource(decision[0][0])["cpu"].after == 1.2


@pytest.mark.parametrize("bounds, words", [
    ({"cpu": {"min": 4, "max": 2}}, "min 4 is above max 2"),
    ({"memory_mib": {"min": -1}}, "must be >= 0"),
    ({"memory_mib": {"min": "lots"}}, "must be a number"),
    ({"memory_mib": [1, 2]}, "must be a dict"),
    ({"memory_mib": {"low": 1}}, "unknown keys low"),
    ({"gpu": {}}, "unknown keys gpu"),
    ({"cpu": {"max": 0}}, "above 0"),
])
def test_malformed_bounds_are_clear_errors(bounds, words):
    with pytest.raises(InvalidInput, match=words):
        parse_config(bounds=bounds)


def test_malformed_policy_is_a_clear_error():
    with pytest.raises(InvalidInput, match="quantile"):
        parse_config(policy={"quantile": 2})
    with pytest.raises(InvalidInput, match="unknown keys nope"):
        parse_config(policy={"nope": 1})
    with pytest.raises(InvalidInput, match="cpu_overcommit"):
        parse_config(host={"cpu_overcommit": 0})


@settings(max_examples=200, deadline=None)
@given(usage=st.one_of(st.none(), st.floats(0, 64)), alloc=st.floats(0.1, 16), floor=st.floats(0.1, 4),
       span=st.floats(0, 12), hard=st.one_of(st.none(), st.floats(0, 32)), steps=st.integers(1, 5))
def test_property_a_change_always_lands_within_its_bounds(usage, alloc, floor, span, hard, steps):
    bounds = pol.Bounds(floor, floor + span, 0.05)
    state = pol.ResourceState()
    for i in range(steps):
        result = pol.decide_resource("cpu", usage, alloc, T0 + 60 * i, state, bounds, pol.PolicyParams(),
                                     hard_floor=hard)
        if usage is None:
            assert not result.changes
        if result.changes:
            assert bounds.floor - 1e-9 <= result.after <= bounds.ceiling + 1e-9
            alloc = result.after
        assert result.reason


# -- readings --------------------------------------------------------------------------------------------------------

def test_stale_or_repeated_readings_decide_nothing():
    config = parse_config(stale_after_s=120)
    decision = decide_desktop(desk(), util(T0 - 600, cpu_percent=100.0), {}, config, T0, host_room=ROOM)
    assert "stale" in decision.skipped and not decision.changes
    first = decide_desktop(desk(), util(T0, cpu_percent=100.0), {}, config, T0, host_room=ROOM)
    assert first.changes
    again = decide_desktop(desk(vcpus=2), util(T0, cpu_percent=100.0), first.state, config, T0 + 30, host_room=ROOM)
    assert "already decided" in again.skipped and again.state == first.state


def test_rates_come_from_counters_and_a_reset_gives_none():
    first, counters = readings(util(T0, disks={"disk0": {"rd_bytes": 0, "wr_bytes": 0}},
                                    nets={"net0": {"rx_bytes": 0, "tx_bytes": 0}}), None)
    assert first["disk"] == {} and first["net"] == {}
    second, counters = readings(util(T0 + 10, disks={"disk0": {"rd_bytes": 1000, "wr_bytes": 1000}},
                                     nets={"net0": {"rx_bytes": 10240, "tx_bytes": 20480}}), counters)
    assert second["disk"] == {"disk0": 200.0} and second["net"] == {"net0": 2.0}
    third, _counters = readings(util(T0 + 20, disks={"disk0": {"rd_bytes": 5, "wr_bytes": 5}}), counters)
    assert third["disk"] == {}


def test_disk_and_net_limits_only_within_configured_bounds():
    decision = run(desk(), [util(None)])[0][0]
    assert set(by_resource(decision)) == {"cpu", "memory"}
    config = parse_config(bounds={"net_kib_s": {"min": 100, "max": 10000}, "disk_bytes_sec": {"min": 1e6, "max": 1e8}})
    decision = run(desk(), [util(None)], config=config)[0][0]
    res = by_resource(decision)
    assert res["net.net0"].after == 10000 and "unlimited" in res["net.net0"].reason
    assert decision.target.disk_io["disk0"] == DiskLimit(total_iops=100, total_bytes_sec=100000000)


def test_malformed_stored_state_is_forgotten_with_a_warning():
    state = {"resources": {"cpu": {"overall": {"weights": "bad"}}, "memory": "junk"}}
    decision = decide_desktop(desk(), util(T0), state, parse_config(), T0, host_room=ROOM)
    assert len(decision.warnings) == 2 and decision.decisions


# -- the histogram ---------------------------------------------------------------------------------------------------

def test_histogram_percentile_and_decay():
    hist = DecayingHistogram(0.01, half_life_s=3600)
    for i in range(100):
        hist.add(1.0, T0 + i)
    assert 1.0 <= hist.percentile(0.9) <= 1.05
    for i in range(100):
        hist.add(4.0, T0 + 10 * 3600 + i)  # ten half-lives later: the old ones weigh ~1/1000
    assert 4.0 <= hist.percentile(0.05) <= 4.2
    assert hist.weight_at(T0 + 10 * 3600) == pytest.approx(100 + 100 / 1024.0, rel=0.01)


def test_histogram_survives_rescaling_and_json():
    hist = DecayingHistogram(0.01, half_life_s=60)
    for i in range(200):
        hist.add(2.0 if i % 2 else 0.5, T0 + 30 * i)  # 100 half-lives: rescaled on the way
    copy = DecayingHistogram.from_dict(json.loads(json.dumps(hist.to_dict())))
    assert copy.percentile(0.9) == hist.percentile(0.9)
    assert copy.percentile(0.3) == hist.percentile(0.3)
    with pytest.raises(ValueError):
        DecayingHistogram.from_dict({"first_edge": 1})
    hist.add(None, T0)
    hist.add(float("nan"), T0)
    hist.add(-1, T0)
    assert copy.total == pytest.approx(hist.total)


def test_time_of_day_memory_anticipates_the_next_hour():
    # Busy 9:00-10:00 every weekday for two weeks, idle otherwise; at 8:10 the policy already wants more.
    # (a day-long overall memory behind the slots, so that Monday 07:00 has a fallback after the weekend's gap)
    params = pol.PolicyParams(time_of_day=True, overall_half_life_s=86400.0)
    state = pol.ResourceState()
    day0 = 1_779_667_200.0  # a Monday 00:00 UTC
    for day in range(12):
        if day % 7 >= 5:
            continue
        for minute in range(0, 24 * 60, 5):
            now = day0 + day * 86400 + minute * 60
            pol.record(state, "cpu", 2.0 if 9 * 60 <= minute < 10 * 60 else 0.1, now, params)
    monday = day0 + 14 * 86400
    early = pol.recommendation(state, monday + 7 * 3600, params)
    before = pol.recommendation(state, monday + 8 * 3600 + 600, params)
    assert early < 0.5 and before >= 2.0
    # Without time of day, one histogram: the busy hour is 1/24 of the readings, under the 95th percentile.
    flat = pol.PolicyParams()
    state = pol.ResourceState()
    for minute in range(0, 5 * 24 * 60, 5):
        pol.record(state, "cpu", 2.0 if 9 * 60 <= minute % 1440 < 10 * 60 else 0.1, day0 + minute * 60, flat)
    assert not state.slots and pol.recommendation(state, day0 + 5 * 86400, flat) < 0.5


def test_a_stored_state_follows_a_changed_half_life_and_keeps_what_it_learned():
    day, hours = pol.PolicyParams(overall_half_life_s=86400.0), pol.PolicyParams(overall_half_life_s=7200.0)
    state = pol.ResourceState()
    for minute in range(0, 600, 5):
        pol.record(state, "cpu", 1.0, T0 + minute * 60, day)
    learned = state.overall.weight_at(T0 + 600 * 60)
    pol.record(state, "cpu", 1.0, T0 + 600 * 60, hours)
    assert state.overall.half_life_s == 7200.0
    assert state.overall.weight_at(T0 + 600 * 60) == pytest.approx(learned + 1.0)
    # from then on it decays at the new rate: two hours halve it
    assert state.overall.weight_at(T0 + 720 * 60) == pytest.approx((learned + 1.0) / 2)
