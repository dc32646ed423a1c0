import json

import jinja2
import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.shadowdesk.vdi.plugins.filter.plan import FilterModule, apply_batches, due_actions, plan_floors
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plans
from ansible_collections.shadowdesk.vdi.tests import plan_data

PLAN = plans.build_plan(**plan_data.inputs())


def test_the_registered_filter_works_inside_a_template():
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters.update(FilterModule().filters())
    login = PLAN["users"]["alice"]["predicted_login"]
    text = env.from_string("{% for a in plan | due_actions(now) %}{{ a.user }}={{ a.stage }} {% endfor %}").render(
        plan=PLAN, now=login)
    assert text.split() == ["alice=full", "bob=full"]
    # before anyone's first step nothing is due
    assert env.from_string("{{ plan | due_actions(now) | length }}").render(plan=PLAN, now=PLAN["window"]["start"]) \
        == "0"


def test_due_actions_from_dict_and_text():
    login = PLAN["users"]["alice"]["predicted_login"]
    from_dict = due_actions(PLAN, login)
    assert {a["user"] for a in from_dict} == {"alice", "bob"}
    alice = [a for a in from_dict if a["user"] == "alice"][0]
    assert (alice["state"], alice["stage"], alice["desktop"]) == ("running", "full", "desk-alice")
    assert set(alice["stages"]) == {"shadow", "warm", "full"}
    assert due_actions(json.dumps(PLAN), login) == from_dict
    assert due_actions(yaml.safe_dump(PLAN), login) == from_dict


def test_nothing_due_before_the_first_step():
    assert due_actions(PLAN, "2026-11-23T00:00:00Z") == []


def test_grace_minutes_keyword():
    release = PLAN["users"]["alice"]["steps"][-1]["at"]
    later = release[:11] + "%02d" % (int(release[11:13]) + 1) + release[13:]
    assert "alice" not in [a["user"] for a in due_actions(PLAN, later)]
    assert "alice" in [a["user"] for a in due_actions(PLAN, later, grace_minutes=90)]


@pytest.mark.parametrize("plan, now, message", [
    ("{broken", "2026-11-23T08:00:00Z", "not valid"),
    ({"version": 1}, "2026-11-23T08:00:00Z", "does not match the plan schema"),
    (PLAN, "half past seven", "not an ISO-8601 time"),
    (42, "2026-11-23T08:00:00Z", "expects a plan dict"),
])
def test_bad_input_is_a_filter_error(plan, now, message):
    with pytest.raises(AnsibleFilterError, match=message):
        due_actions(plan, now)


def test_apply_batches_groups_the_due_actions_of_a_plan_by_connection():
    due = due_actions(PLAN, PLAN["users"]["alice"]["predicted_login"])
    assert FilterModule().filters()["apply_batches"] is apply_batches
    (batch,) = apply_batches(due)
    assert batch["connection"] == {} and batch["actions"] == due
    uris = {node: {"uri": "qemu+ssh://%s/system" % node} for node in {a["node"] for a in due}}
    assert sorted(b["connection"]["uri"] for b in apply_batches(due, uris)) == sorted(u["uri"] for u in uris.values())
    with pytest.raises(AnsibleFilterError, match="expects the list"):
        apply_batches({"not": "a list"})
    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        apply_batches(due, {a["node"]: "qemu:///system" for a in due})


def test_plan_floors_from_dict_and_text_inside_a_template():
    login = PLAN["users"]["alice"]["predicted_login"]
    floors = plan_floors(PLAN, login)
    full = PLAN["users"]["alice"]["stages"]["full"]
    assert floors["desk-alice"] == {k: full[k] for k in ("vcpus", "cpu_limit", "memory_mib") if full.get(k) is not None}
    assert plan_floors(json.dumps(PLAN), login) == floors == plan_floors(yaml.safe_dump(PLAN), login)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters.update(FilterModule().filters())
    assert env.from_string("{{ (plan | plan_floors(now)).keys() | sort | join(',') }}").render(
        plan=PLAN, now=login) == "desk-alice,desk-bob"
    assert plan_floors(PLAN, PLAN["window"]["start"]) == {}


@pytest.mark.parametrize("plan, now, message", [
    ("{broken", "2026-11-23T08:00:00Z", "plan_floors: .*not valid"),
    (PLAN, "half past seven", "plan_floors: .*not an ISO-8601 time"),
    (42, "2026-11-23T08:00:00Z", "plan_floors expects a plan dict"),
])
def test_plan_floors_bad_input_is_a_filter_error(plan, now, message):
    with pytest.raises(AnsibleFilterError, match=message):
        plan_floors(plan, now)
