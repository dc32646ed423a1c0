import datetime as dt

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import plan_steps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

STEPS = [
    {"at": "2026-11-23T07:00:00Z", "state": "running", "stage": "warm"},
    {"at": "2026-11-23T07:50:00Z", "state": "running", "stage": "full"},
    {"at": "2026-11-23T18:00:00Z", "state": "saved", "stage": "shadow"},
]
STAGES = {"shadow": {"vcpus": 1, "memory_mib": 2048}, "warm": {"vcpus": 2, "memory_mib": 4096},
          "full": {"vcpus": 4, "memory_mib": 8192}}
PLAN = {"users": {
    "alice": {"desktop": "desk-alice", "node": "n1", "stages": STAGES, "steps": STEPS},
    "carol": {"desktop": "desk-carol", "node": None, "stages": {}, "steps": []},
}}


def t(text):
    return plan_steps.parse_time(text)


def test_parse_time_variants():
    assert t("2026-11-23T07:00:00Z") == dt.datetime(2026, 11, 23, 7, tzinfo=dt.timezone.utc)
    assert t("2026-11-23T08:00:00+01:00") == t("2026-11-23T07:00:00Z")
    assert plan_steps.format_time(t("2026-11-23T08:00:00.5+01:00")) == "2026-11-23T07:00:00Z"


@pytest.mark.parametrize("bad", ["tomorrow", "", None, 5, "2026-11-23T07:00:00"])
def test_parse_time_rejects(bad):
    with pytest.raises(InvalidInput):
        plan_steps.parse_time(bad, "now")


@pytest.mark.parametrize("now, expected", [
    ("2026-11-23T06:59:59Z", None),
    ("2026-11-23T07:00:00Z", "warm"),
    ("2026-11-23T07:49:00Z", "warm"),
    ("2026-11-23T07:50:00Z", "full"),
    ("2026-11-23T17:59:00Z", "full"),
    ("2026-11-23T18:00:00Z", "shadow"),
    ("2026-11-25T00:00:00Z", "shadow"),
])
def test_desired_step_is_last_step_at_or_before(now, expected):
    step = plan_steps.desired_step(list(reversed(STEPS)), t(now))
    assert (step and step["stage"]) == expected


def test_due_actions_shape_and_idempotence():
    first = plan_steps.due_actions(PLAN, "2026-11-23T07:30:00Z")
    assert first == [{"user": "alice", "desktop": "desk-alice", "node": "n1", "state": "running",
                      "stage": "warm", "stages": STAGES, "at": "2026-11-23T07:00:00Z", "release": False,
                      "woken_at": "2026-11-23T07:00:00Z"}]
    assert plan_steps.due_actions(PLAN, "2026-11-23T07:35:00Z") == first


def test_release_only_within_grace():
    assert plan_steps.due_actions(PLAN, "2026-11-23T18:10:00Z")[0]["state"] == "saved"
    assert plan_steps.due_actions(PLAN, "2026-11-23T18:10:00Z")[0]["woken_at"] == "2026-11-23T07:00:00Z"
    assert plan_steps.due_actions(PLAN, "2026-11-23T18:10:00Z")[0]["release"] is True
    assert plan_steps.due_actions(PLAN, "2026-11-23T18:20:00Z") == []
    assert len(plan_steps.due_actions(PLAN, "2026-11-23T18:20:00Z", grace_minutes=30)) == 1


def test_before_first_step_nothing_due():
    assert plan_steps.due_actions(PLAN, "2026-11-23T01:00:00Z") == []


def test_due_actions_bad_inputs():
    with pytest.raises(InvalidInput):
        plan_steps.due_actions(PLAN, "not a time")
    with pytest.raises(InvalidInput):
        plan_steps.due_actions(PLAN, "2026-11-23T07:30:00Z", grace_minutes=-1)


def test_woken_at_is_the_first_wake_of_the_session_the_step_belongs_to():
    two_days = STEPS + [{"at": "2026-11-24T07:00:00Z", "state": "running", "stage": "warm"},
                        {"at": "2026-11-24T18:00:00Z", "state": "paused", "stage": "shadow"}]
    assert plan_steps.session_woken_at(two_days, two_days[-1]) == "2026-11-24T07:00:00Z"
    assert plan_steps.session_woken_at(two_days, two_days[2]) == "2026-11-23T07:00:00Z"
    assert plan_steps.session_woken_at([STEPS[2]], STEPS[2]) is None


@pytest.mark.parametrize("now, floor", [
    ("2026-11-23T06:59:59Z", None),                           # before the first step: no floor
    ("2026-11-23T07:00:00Z", {"vcpus": 2, "memory_mib": 4096}),
    ("2026-11-23T08:00:00Z", {"vcpus": 4, "memory_mib": 8192}),
    ("2026-11-25T00:00:00Z", {"vcpus": 1, "memory_mib": 2048}),  # long after the release: still the shadow's
])
def test_stage_floors_are_the_current_stage_of_each_planned_desktop(now, floor):
    floors = plan_steps.stage_floors(PLAN, now)
    assert floors.get("desk-alice") == floor and "desk-carol" not in floors


def test_stage_floors_keep_only_the_set_size_fields():
    stages = {"full": {"vcpus": 2, "memory_mib": 4096, "cpu_limit": None, "net": {"net0": {"rate_kib_s": 1}},
                       "disk_io": {}, "gpu": None}}
    plan = {"users": {"bob": {"desktop": "desk-bob", "stages": stages,
                              "steps": [{"at": "2026-11-23T07:00:00Z", "state": "running", "stage": "full"}]}}}
    assert plan_steps.stage_floors(plan, "2026-11-23T08:00:00Z") == {"desk-bob": {"vcpus": 2, "memory_mib": 4096}}
