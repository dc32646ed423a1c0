"""The fast path's rules on a small in-memory backend (the real libvirt/PVE paths: tests/integration/test_eda_*)."""

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    BackendUnavailable, Conflict, DesktopNotFound, InvalidInput, OperationRefused,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import DesktopFacts
from ansible_collections.shadowdesk.vdi.plugins.module_utils._session_wake import DesktopWaker, wake


class MemoryBackend:
    """Power states only; records calls; ``fail`` maps a step to a list of exceptions raised in turn."""

    def __init__(self, desktops, fail=None):
        self.desktops = dict(desktops)  # name -> (user, state)
        self.calls = []
        self.fail = fail or {}
        self.closed = False

    def _facts(self, name):
        user, state = self.desktops[name]
        return DesktopFacts(name=name, backend="memory", state=state, user=user,
                            tags=["shadowdesk"] if user else [])

    def get(self, name):
        return self._facts(name) if name in self.desktops else None

    def list(self, user=None):
        return [self._facts(n) for n, (u, _s) in sorted(self.desktops.items()) if u and (user is None or u == user)]

    def _step(self, step, name, new_state):
        self.calls.append((step, name))
        if self.fail.get(step):
            raise self.fail[step].pop(0)
        self.desktops[name] = (self.desktops[name][0], new_state)

    def start(self, name):
        self._step("start", name, "running")

    def resume(self, name):
        self._step("resume", name, "running")

    def close(self):
        self.closed = True


@pytest.mark.parametrize("state, path", [("running", "hit"), ("paused", "paused"), ("saved", "saved"),
                                         ("shutoff", "cold")])
def test_wake_takes_the_path_of_the_state_and_confirms_running(state, path):
    backend = MemoryBackend({"d1": ("alice", state)})
    result = wake(backend, "alice")
    assert result["path"] == path and result["desktop"] == "d1" and result["state_before"] == state
    assert backend.desktops["d1"] == ("alice", "running")
    assert backend.calls == ([] if state == "running" else [("resume" if state == "paused" else "start", "d1")])


def test_wake_refuses_someone_elses_or_an_unmanaged_desktop():
    backend = MemoryBackend({"d1": ("alice", "saved"), "vm": (None, "saved")})
    with pytest.raises(InvalidInput, match="belongs to alice"):
        wake(backend, "mallory", "d1")
    with pytest.raises(DesktopNotFound):
        wake(backend, "alice", "vm")
    with pytest.raises(DesktopNotFound):
        wake(backend, "alice", "nope")
    with pytest.raises(DesktopNotFound):
        wake(backend, "bob")
    assert backend.calls == []


def test_a_user_with_several_desktops_must_name_one():
    backend = MemoryBackend({"d1": ("alice", "saved"), "d2": ("alice", "saved")})
    with pytest.raises(InvalidInput, match="d1, d2"):
        wake(backend, "alice")
    assert wake(backend, "alice", "d2")["desktop"] == "d2"


def test_a_failed_restore_is_reported_not_replaced_by_a_cold_boot():
    backend = MemoryBackend({"d1": ("alice", "saved")}, fail={"start": [OperationRefused("restore failed")]})
    with pytest.raises(OperationRefused, match="restore failed"):
        DesktopWaker(lambda: backend, timeout=0).wake("alice")
    assert backend.desktops["d1"] == ("alice", "saved")
    assert backend.calls == [("start", "d1")]


def test_a_wake_that_meets_a_save_in_progress_waits_for_it():
    backend = MemoryBackend({"d1": ("alice", "saved")},
                            fail={"start": [Conflict("domain is being saved"), Conflict("domain is being saved")]})
    slept = []
    waker = DesktopWaker(lambda: backend, timeout=10, retry_interval=0.5, sleep=slept.append)
    assert waker.wake("alice")["path"] == "saved"
    assert slept == [0.5, 0.5]


def test_the_waker_reconnects_once_after_the_daemon_went_away():
    made = []

    def factory():
        backend = MemoryBackend({"d1": ("alice", "paused")},
                                fail={"resume": [BackendUnavailable("lost")] if not made else []})
        made.append(backend)
        return backend

    waker = DesktopWaker(factory)
    assert waker.wake("alice")["path"] == "paused"
    assert len(made) == 2 and made[0].closed
    waker.close()
    assert made[1].closed


def test_the_waker_gives_up_when_the_daemon_stays_away():
    def factory():
        return MemoryBackend({"d1": ("alice", "paused")}, fail={"resume": [BackendUnavailable("down")]})

    with pytest.raises(BackendUnavailable):
        DesktopWaker(factory).wake("alice")


def test_the_waker_remembers_a_users_desktop_but_checks_it_still_is_theirs():
    backend = MemoryBackend({"d1": ("alice", "saved"), "d2": ("bob", "saved")})
    listed = []
    real_list = backend.list
    backend.list = lambda user=None: listed.append(user) or real_list(user)
    waker = DesktopWaker(lambda: backend)
    assert waker.wake("alice")["desktop"] == "d1"
    assert waker.wake("alice")["path"] == "hit"
    assert listed == ["alice"]
    backend.desktops["d1"] = ("bob", "running")  # reassigned: the memory must not hand bob's desktop to alice
    with pytest.raises(DesktopNotFound):
        waker.wake("alice")
