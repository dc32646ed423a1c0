import copy
import json
import os

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plan_files, plan_inputs, plan_schema, plans
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.tests import plan_data

TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "..", "roles", "forecast", "templates",
                        "plan_summary.md.j2")


def build(**overrides):
    return plans.build_plan(**plan_data.inputs(**overrides))


def minutes_between(a, b):
    return (parse_time(b) - parse_time(a)).total_seconds() / 60


def test_plan_matches_contract_and_schema():
    plan = build()
    plan_schema.validate_plan(plan)
    assert plan["version"] == 1 and plan["generated_at"] == plan_data.NOW
    assert plan["window"] == {"start": "2026-11-23T00:00:00Z", "end": "2026-11-24T00:00:00Z"}
    alice = plan["users"]["alice"]
    assert alice["predicted_login"] == "2026-11-23T08:00:00Z"
    assert [(s["state"], s["stage"]) for s in alice["steps"]] == [
        ("running", "warm"), ("running", "full"), ("saved", "shadow")]
    ats = [parse_time(s["at"]) for s in alice["steps"]]
    assert ats == sorted(ats) and ats[1] < parse_time(alice["predicted_login"])
    assert alice["lead_minutes"] == minutes_between(alice["steps"][0]["at"], alice["predicted_login"])


def test_stages_from_profile_and_desktop():
    stages = build()["users"]["alice"]["stages"]
    assert stages["shadow"]["vcpus"] == 1 and stages["shadow"]["memory_mib"] == 2048
    assert stages["full"]["vcpus"] == 2                      # ceil(1.5 * 1.25)
    assert stages["full"]["memory_mib"] == 3840              # 3000 * 1.25 rounded up to 256 MiB
    assert stages["shadow"]["memory_mib"] <= stages["warm"]["memory_mib"] <= stages["full"]["memory_mib"]
    assert stages["full"]["net"] == {"net0": {"rate_kib_s": 100000}}
    assert stages["shadow"]["net"] == {"net0": {"rate_kib_s": 10000}}


def test_lead_grows_with_measured_times():
    quick = build(measured={"restore_s": 0.5, "hotplug_s": 1})["users"]["alice"]
    slow = build(measured={"restore_s": 120, "hotplug_s": 60})["users"]["alice"]
    assert slow["lead_minutes"] > quick["lead_minutes"]
    assert parse_time(slow["steps"][1]["at"]) < parse_time(quick["steps"][1]["at"])


def test_lead_includes_apply_interval():
    short = build(options={"apply_interval_minutes": 1})["users"]["alice"]["lead_minutes"]
    long_ = build(options={"apply_interval_minutes": 15})["users"]["alice"]["lead_minutes"]
    assert long_ - short >= 14


def test_wider_band_wakes_earlier():
    narrow = build(forecasts=[plan_data.forecast("alice")])["users"]["alice"]
    wide = build(forecasts=[plan_data.forecast("alice", uncertain_before=3)])["users"]["alice"]
    assert wide["predicted_login"] == narrow["predicted_login"]
    assert wide["lead_minutes"] > narrow["lead_minutes"]
    capped = build(forecasts=[plan_data.forecast("alice", uncertain_before=10)],
                   options={"max_prewarm_minutes": 30})["users"]["alice"]
    assert capped["lead_minutes"] < 30 + narrow["lead_minutes"] + 0.01


def test_fallback_is_conservative_and_marked():
    bob = build()["users"]["bob"]
    alice_like = build(forecasts=[plan_data.forecast("bob")])["users"]["bob"]
    assert bob["method"] == "fallback" and bob["conservative"] is True
    assert bob["steps"][0]["stage"] == "full"                       # full size from the wake
    assert bob["stages"]["full"]["vcpus"] == 4                     # the desktop's maximum
    assert bob["lead_minutes"] >= alice_like["lead_minutes"]
    assert parse_time(bob["steps"][-1]["at"]) > parse_time(alice_like["steps"][-1]["at"])


def test_left_alone_without_forecast_or_history():
    no_history = plan_data.forecast("bob", method="fallback", sessions=0)
    no_history["p"] = [0.0] * len(no_history["p"])
    no_history["p_high"] = list(no_history["p"])
    plan = build(forecasts=[plan_data.forecast("alice"), no_history])
    for user in ("bob", "carol"):
        assert plan["users"][user]["steps"] == [] and plan["users"][user]["node"] is None
    assert "no forecast" in plan["users"]["carol"]["reason"]
    assert "without history" in plan["users"]["bob"]["reason"]


def test_no_predicted_login_means_no_steps():
    quiet = plan_data.forecast("alice")
    quiet["p"] = quiet["p_low"] = quiet["p_high"] = [0.0] * len(quiet["p"])
    assert build(forecasts=[quiet])["users"]["alice"]["steps"] == []


def test_two_sessions_release_to_paused_between():
    fc = plan_data.forecast("alice", login_slot=16, logout_slot=22)
    for i in range(28, 34):
        fc["p"][i], fc["p_high"][i], fc["p_low"][i] = 0.9, 1.0, 0.8
    steps = build(forecasts=[fc])["users"]["alice"]["steps"]
    states = [s["state"] for s in steps]
    assert states.count("paused") == 1 and states[-1] == "saved"
    assert [s["at"] for s in steps] == sorted(s["at"] for s in steps)


def test_short_gap_is_bridged():
    fc = plan_data.forecast("alice", login_slot=16, logout_slot=22)
    for i in range(23, 30):
        fc["p"][i], fc["p_high"][i] = 0.9, 1.0
    steps = build(forecasts=[fc])["users"]["alice"]["steps"]
    assert [s["state"] for s in steps].count("running") == 2 and len(steps) == 3


def test_placement_least_contention_and_cost():
    nodes = [dict(plan_data.NODES[0], used_vcpus=12), plan_data.NODES[1]]
    assert build(nodes=nodes)["users"]["alice"]["node"] == "n2"
    spot = {"default": 0.05, "spot": {"n1": [{"start": "2026-11-23T00:00:00Z", "end": "2026-11-24T00:00:00Z",
                                              "price": 0.001}]}}
    nodes = [dict(plan_data.NODES[0], used_vcpus=2), plan_data.NODES[1]]
    plan = build(nodes=nodes, prices=spot)
    assert plan["users"]["alice"]["node"] == "n1"
    assert plan["total_cost"] == pytest.approx(sum(u["cost"] for u in plan["users"].values()), abs=1e-3)


def test_pinned_desktop_stays_and_capacity_degrades_to_warm():
    desktops = copy.deepcopy(plan_data.DESKTOPS)
    desktops["alice"]["node"] = "n1"
    nodes = [dict(plan_data.NODES[0], vcpus=2, memory_mib=6144), plan_data.NODES[1]]
    alice = build(desktops=desktops, nodes=nodes, profiles=[])["users"]["alice"]
    assert alice["node"] == "n1"
    assert alice["stages"]["full"]["vcpus"] == alice["stages"]["warm"]["vcpus"]
    assert alice["warnings"] and "capped to warm" in alice["warnings"][0]
    tiny = [dict(plan_data.NODES[0], vcpus=0, memory_mib=0)]
    nothing = build(desktops=desktops, nodes=tiny)["users"]["alice"]
    assert nothing["steps"] == [] and "no node has capacity" in nothing["reason"]


def test_gpu_desktop_goes_to_gpu_node():
    desktops = copy.deepcopy(plan_data.DESKTOPS)
    desktops["alice"]["gpu"] = ["0000:65:00.0"]
    alice = build(desktops=desktops)["users"]["alice"]
    assert alice["node"] == "n2" and alice["stages"]["full"]["gpu"] == ["0000:65:00.0"]
    assert alice["stages"]["warm"]["gpu"] is None


def test_deterministic_apart_from_generated_at():
    first, second = build(), build(now="2026-11-22T22:00:00Z")
    assert first != second and plans.comparable(first) == plans.comparable(second)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["forecasts"][0].pop("p"), "missing the field 'p'"),
    (lambda d: d["forecasts"][0].update(p_high=[0.1]), "p_high has 1 values but p has 48"),
    (lambda d: d["forecasts"][0].update(start="yesterday"), "not an ISO-8601 time"),
    (lambda d: d["forecasts"][0].update(slot_minutes="30"), "slot_minutes must be an integer"),
    (lambda d: d["forecasts"][0]["p"].__setitem__(3, 1.5), "p[3] must be <= 1"),
    (lambda d: d["forecasts"][0].update(method="magic"), "method must be one of"),
    (lambda d: d["forecasts"].append(plan_data.forecast("alice")), "more than one forecast"),
    (lambda d: d["nodes"][0].update(vcpus=-4), "nodes[0] (n1).vcpus must be >= 0"),
    (lambda d: d["nodes"][1].update(memory_mib="lots"), "memory_mib must be an integer"),
    (lambda d: d["nodes"][1].pop("name"), "missing the field 'name'"),
    (lambda d: d.update(nodes=[]), "nodes must be a non-empty list"),
    (lambda d: d["desktops"]["alice"].pop("max_vcpus"), "desktops.alice is missing the field 'max_vcpus'"),
    (lambda d: d["desktops"]["alice"].update(node="n9"), "desktops.alice.node 'n9' is not in nodes"),
    (lambda d: d["desktops"].update(alice="desk-alice"), "desktops.alice must be a dict"),
    (lambda d: d["prices"].update(spot={"n1": [{"start": "x", "end": "y", "price": 1}]}), "not an ISO-8601"),
    (lambda d: d["prices"].update(hourly={"25": 0.1}), "not an hour"),
    (lambda d: d["prices"].update(default=-1), "prices.default must be >= 0"),
    (lambda d: d.update(measured={"restore_s": -1}), "measured.restore_s must be >= 0"),
    (lambda d: d.update(measured={"boot_s": 1}), "measured has unknown keys: boot_s"),
    (lambda d: d.update(options={"risk": 2}), "risk must be between 0 and 1"),
    (lambda d: d.update(now="soon"), "now 'soon' is not an ISO-8601"),
    (lambda d: d.update(forecasts="not a list"), "forecasts must be a list or a dict"),
])
def test_malformed_inputs_fail_clearly(change, message):
    data = plan_data.inputs()
    change(data)
    with pytest.raises(InvalidInput) as err:
        plans.build_plan(**data)
    assert message in str(err.value)


def test_forecasts_as_dict_or_file(tmp_path):
    by_user = {"alice": plan_data.forecast("alice")}
    assert build(forecasts=by_user)["users"]["alice"]["steps"]
    (tmp_path / "forecasts").mkdir()
    (tmp_path / "forecasts" / "f.json").write_text(json.dumps([plan_data.forecast("alice")]))
    assert plan_inputs.read_forecasts_file("f.json", str(tmp_path))[0]["user"] == "alice"
    (tmp_path / "forecasts" / "bad.json").write_text("{nope")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        plan_inputs.read_forecasts_file("bad.json", str(tmp_path))
    with pytest.raises(InvalidInput, match="cannot read forecasts file"):
        plan_inputs.read_forecasts_file("missing.json", str(tmp_path))


@pytest.mark.parametrize("name", ["plan.json", "plan.yml"])
def test_schema_round_trip(tmp_path, name):
    plan = build()
    path = str(tmp_path / name)
    plan_schema.write_plan(plan, path)
    assert plan_schema.read_plan(path) == plan


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"version": 2}', "does not match the plan schema"),
    ("[]", "does not match the plan schema"),
])
def test_corrupted_plan_file_fails_clearly(tmp_path, text, message):
    path = tmp_path / "latest.json"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message):
        plan_schema.read_plan(str(path))


def test_schema_rejects_bad_steps():
    plan = build()
    plan["users"]["alice"]["steps"][0]["state"] = "exploded"
    plan["users"]["alice"]["steps"][1]["at"] = "8 o'clock"
    with pytest.raises(InvalidInput) as err:
        plan_schema.validate_plan(plan)
    assert "users/alice/steps/0/state" in str(err.value) and "users/alice/steps/1/at" in str(err.value)


def test_publish_changed_unchanged_and_check_mode(tmp_path):
    data_dir = str(tmp_path)
    plan = build()
    summary = plan_files.render_summary(plan, open(TEMPLATE).read())
    assert "alice (desk-alice on n" in summary and "carol (desk-carol): no forecast" in summary
    dry = plan_files.publish(plan, summary, data_dir, check_mode=True)
    assert dry["changed"] and not os.path.exists(os.path.join(data_dir, "plans"))
    first = plan_files.publish(plan, summary, data_dir)
    assert first["changed"] and os.path.exists(first["path"]) and os.path.exists(first["latest"])
    assert os.path.exists(first["path"].replace(".json", ".summary.md"))
    again = plan_files.publish(build(now="2026-11-22T23:00:00Z"), summary, data_dir)
    assert not again["changed"] and again["path"] is None
    assert sorted(os.listdir(os.path.join(data_dir, "plans"))) == [
        "latest.json", "latest.summary.md", "plan-20261122T210000Z.json", "plan-20261122T210000Z.summary.md"]


def test_publish_replaces_a_corrupted_latest(tmp_path):
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "latest.json").write_text("garbage")
    result = plan_files.publish(build(), "s", str(tmp_path))
    assert result["changed"] and "unusable" in result["warnings"][0]
    assert plan_schema.read_plan(result["latest"])["version"] == 1


def test_summary_template_errors_are_clear():
    with pytest.raises(InvalidInput, match="cannot be rendered"):
        plan_files.render_summary(build(), "{{ plan.nope.deeper }}")


def test_users_forecast_without_a_desktop_are_listed_not_planned():
    data = plan_data.inputs()
    data["forecasts"].append(plan_data.forecast("mallory"))
    plan = plans.build_plan(**data)
    assert "mallory" not in plan["users"]
    assert plan["unplanned"] == {"mallory": "forecast but no desktop in desktops: not planned"}
    plan_schema.validate_plan(plan)


def test_measured_times_of_the_desktops_node_set_its_lead():
    desktops = copy.deepcopy(plan_data.DESKTOPS)
    desktops["alice"]["node"] = "n1"
    slow_node = {"n1": {"restore_s": 120, "hotplug_s": 60}, "n2": {"restore_s": 0.1}}
    base = build(desktops=desktops, measured={"restore_s": 0.5, "hotplug_s": 1})
    per_node = build(desktops=desktops, measured={"restore_s": 0.5, "hotplug_s": 1}, measured_by_node=slow_node)
    assert per_node["users"]["alice"]["lead_minutes"] > base["users"]["alice"]["lead_minutes"]
    assert per_node["policy"]["measured_by_node"]["n1"] == {"restore_s": 120.0, "resume_s": 0.064, "hotplug_s": 60.0}
    assert "measured_by_node" not in base["policy"]
