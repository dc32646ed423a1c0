import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.lifecycle import (
    WANTED_STATES, lifecycle_steps, state_after,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import POWER_STATES


@pytest.mark.parametrize("current", [None] + list(POWER_STATES))
@pytest.mark.parametrize("wanted", WANTED_STATES)
def test_every_transition_reaches_the_wanted_state_and_is_then_a_no_op(current, wanted):
    steps = lifecycle_steps(current, wanted)
    reached = state_after(steps, current)
    if wanted == "absent":
        assert reached is None
    elif wanted == "present":
        assert reached == (current or "shutoff")
    else:
        assert reached == {"running": "running", "paused": "paused", "saved": "saved", "stopped": "shutoff"}[wanted]
    # idempotence: from where we arrived, nothing more to do
    assert lifecycle_steps(reached, wanted) == []


def test_a_saved_shadow_is_woken_by_restore_not_by_boot():
    assert lifecycle_steps("saved", "running") == ["start"]


def test_removing_a_running_desktop_stops_it_first():
    assert lifecycle_steps("running", "absent") == ["stop", "remove"]


def test_stopping_a_saved_desktop_needs_the_explicit_discard_step():
    assert lifecycle_steps("saved", "stopped") == ["discard_saved_state"]


def test_unknown_wanted_state_is_rejected():
    with pytest.raises(ValueError):
        lifecycle_steps("running", "hibernating")
