import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.lifecycle import state_after
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.wake_path import WAKE_PATHS, wake_path
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import POWER_STATES


@pytest.mark.parametrize("state, path, steps", [
    ("running", "hit", []),
    ("paused", "paused", ["resume"]),
    ("saved", "saved", ["start"]),
    ("shutoff", "cold", ["start"]),
])
def test_each_power_state_has_its_path(state, path, steps):
    assert wake_path(state) == (path, steps)


@pytest.mark.parametrize("state", POWER_STATES)
def test_every_path_ends_running_and_never_discards_saved_state(state):
    path, steps = wake_path(state)
    assert path in WAKE_PATHS
    assert state_after(steps, state) == "running"
    assert not {"discard_saved_state", "stop", "save", "remove"} & set(steps)


def test_unknown_state_is_refused():
    with pytest.raises(ValueError):
        wake_path("exploded")
