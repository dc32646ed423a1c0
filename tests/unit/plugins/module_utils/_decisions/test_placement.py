import datetime as dt

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import placement

UTC = dt.timezone.utc


def at(hour, minute=0, day=23):
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def node(name, vcpus=16, memory=65536, gpus=0, **used):
    return dict({"name": name, "vcpus": vcpus, "memory_mib": memory, "gpus": gpus}, **used)


PRICES = {"default": 0.1, "hourly": {8: 0.2}, "spot": {"b": [(at(6), at(12), 0.01)]}}


def test_price_precedence_spot_hourly_default():
    assert placement.price_at(PRICES, "b", at(8)) == 0.01
    assert placement.price_at(PRICES, "a", at(8, 30)) == 0.2
    assert placement.price_at(PRICES, "a", at(9)) == 0.1
    assert placement.price_at(PRICES, "b", at(12)) == 0.1


def test_interval_cost_splits_at_hours_and_spot_edges():
    # 07:30-08:30 on a: half an hour at 0.1, half at 0.2; 2 units
    assert placement.interval_cost(PRICES, "a", at(7, 30), at(8, 30), 2) == pytest.approx(0.3)
    # 11:00-13:00 on b: one spot hour 0.01, one default hour 0.1
    assert placement.interval_cost(PRICES, "b", at(11), at(13)) == pytest.approx(0.11)
    assert placement.interval_cost(PRICES, "a", at(9), at(9)) == 0.0


def test_a_gib_of_memory_costs_a_quarter_of_a_vcpu():
    hour = (at(8), at(9))
    prices = {"default": 0.1}
    ledger = placement.Ledger([node("a")])
    cpu = placement.choose_node(ledger, [hour + (1, 0, 0)], prices)
    memory = placement.choose_node(ledger, [hour + (0, 4096, 0)], prices)
    both = placement.choose_node(ledger, [hour + (2, 8192, 0)], prices)
    assert cpu["cost"] == pytest.approx(memory["cost"]) == pytest.approx(0.1)   # 1 vCPU-hour = 4 GiB-hours
    assert both["cost"] == pytest.approx(4 * cpu["cost"])


def test_least_contention_wins_at_equal_price():
    ledger = placement.Ledger([node("a", used_vcpus=8), node("b")])
    choice = placement.choose_node(ledger, [(at(8), at(17), 4, 8192, 0)], {"default": 0.1})
    assert choice["node"] == "b"
    assert choice["candidates"]["a"]["contention"] > choice["candidates"]["b"]["contention"]


def test_cheaper_node_wins_when_capacity_allows():
    ledger = placement.Ledger([node("a"), node("b", used_vcpus=4)])
    choice = placement.choose_node(ledger, [(at(7), at(11), 4, 8192, 0)], PRICES)
    assert choice["node"] == "b"   # spot price on b is a tenth of a's


def test_cost_weight_zero_ignores_price():
    ledger = placement.Ledger([node("a"), node("b", used_vcpus=4)])
    choice = placement.choose_node(ledger, [(at(7), at(11), 4, 8192, 0)], PRICES, cost_weight=0)
    assert choice["node"] == "a"


def test_capacity_is_time_aware():
    ledger = placement.Ledger([node("a", vcpus=4)])
    ledger.add("a", [(at(8), at(12), 4, 1024, 0)])
    assert placement.choose_node(ledger, [(at(12), at(16), 4, 1024, 0)], {})["node"] == "a"
    full = placement.choose_node(ledger, [(at(11), at(16), 1, 1024, 0)], {})
    assert full["node"] is None and "vCPUs" in full["reason"]
    # a demand spanning the start of a planned allocation is checked at that start too
    ledger2 = placement.Ledger([node("a", vcpus=4)])
    ledger2.add("a", [(at(10), at(12), 4, 1024, 0)])
    assert placement.choose_node(ledger2, [(at(8), at(16), 1, 1024, 0)], {})["node"] is None


def test_memory_and_gpu_limits():
    ledger = placement.Ledger([node("a", memory=4096, used_memory_mib=2048), node("b", gpus=1)])
    assert placement.choose_node(ledger, [(at(8), at(9), 1, 4096, 0)], {})["node"] == "b"
    assert placement.choose_node(ledger, [(at(8), at(9), 1, 1024, 1)], {})["node"] == "b"
    none = placement.choose_node(ledger, [(at(8), at(9), 1, 1024, 2)], {})
    assert none["node"] is None and "GPUs" in none["reason"]


def test_pinned_node_is_the_only_candidate():
    ledger = placement.Ledger([node("a", used_vcpus=15), node("b")])
    assert placement.choose_node(ledger, [(at(8), at(9), 1, 1024, 0)], {}, pinned="a")["node"] == "a"
    assert placement.choose_node(ledger, [(at(8), at(9), 2, 1024, 0)], {}, pinned="a")["node"] is None


def test_ties_break_by_name():
    ledger = placement.Ledger([node("z"), node("a")])
    assert placement.choose_node(ledger, [(at(8), at(9), 1, 1024, 0)], {"default": 0.1})["node"] == "a"
