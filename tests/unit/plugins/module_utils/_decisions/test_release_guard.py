"""The release guard: a planned release means "if the user has not come by then"."""

from __future__ import annotations

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.release_guard import release_verdict
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

WOKEN = "2026-11-16T06:24:00Z"
RELEASE = "2026-11-16T11:45:00Z"
IDLE = {"state": "running", "consoles": [], "agent": "not configured", "agent_users": []}
VNC = dict(IDLE, consoles=[{"kind": "vnc", "client": "127.0.0.1:40000", "since": None}])


def verdict(activity=None, session=None, now=RELEASE, **kw):
    return release_verdict(activity or IDLE, session or {}, now, **kw)


def test_nobody_came_the_planned_release_goes_ahead():
    v = verdict(woken_at=WOKEN)
    assert v["allowed"] and not v["in_use"] and v["reasons"] == []


def test_a_connected_console_client_keeps_the_desktop_whatever_the_history_says():
    for purpose in ("planned", "disconnect"):
        v = verdict(VNC, {"last_disconnect": "2026-11-16T09:00:00Z"}, woken_at=WOKEN, purpose=purpose)
        assert not v["allowed"] and v["in_use"]
        assert "vnc console connected from 127.0.0.1:40000" in v["reasons"][0]


def test_an_open_session_in_the_history_keeps_the_desktop():
    v = verdict(session={"connected": True, "last_connect": "2026-11-16T08:01:00Z"}, woken_at=WOKEN)
    assert not v["allowed"] and v["in_use"]


def test_a_user_who_came_and_left_is_released_by_the_disconnect_after_the_grace():
    session = {"last_connect": "2026-11-16T08:01:00Z", "last_disconnect": "2026-11-16T11:40:00Z"}
    held = verdict(session=session, woken_at=WOKEN, grace_minutes=10)
    assert not held["allowed"] and not held["in_use"]
    assert held["release_at"] == "2026-11-16T11:50:00Z" and "grace" in held["reasons"][0]
    assert verdict(session=session, now="2026-11-16T11:50:00Z", woken_at=WOKEN, grace_minutes=10)["allowed"]


def test_a_connect_without_a_recorded_disconnect_blocks_the_planned_release():
    v = verdict(session={"last_connect": "2026-11-16T08:01:00Z"}, woken_at=WOKEN)
    assert not v["allowed"] and "disconnect releases it" in v["reasons"][0]


def test_sessions_before_the_wake_do_not_count_as_having_come():
    session = {"last_connect": "2026-11-13T08:00:00Z", "last_disconnect": "2026-11-13T17:00:00Z"}
    assert verdict(session=session, woken_at=WOKEN)["allowed"]


def test_a_fresh_guest_agent_login_counts_an_old_one_does_not():
    fresh = dict(IDLE, agent="answered", agent_users=[{"user": "alice", "login_time": "2026-11-16T08:05:00Z"}])
    restored = dict(IDLE, agent="answered", agent_users=[{"user": "alice", "login_time": "2026-11-10T08:05:00Z"}])
    assert not verdict(fresh, woken_at=WOKEN)["allowed"]
    assert verdict(restored, woken_at=WOKEN)["allowed"], "a restored desktop carries its old login"


def test_disconnect_purpose_waits_for_the_grace_and_for_no_reconnect():
    session = {"last_connect": "2026-11-16T08:01:00Z", "last_disconnect": "2026-11-16T11:40:00Z"}
    assert verdict(session=session, now="2026-11-16T11:40:00Z", purpose="disconnect")["allowed"]
    reconnected = dict(session, last_connect="2026-11-16T11:41:00Z")
    v = verdict(session=reconnected, now="2026-11-16T11:42:00Z", purpose="disconnect")
    assert not v["allowed"] and "reconnected" in v["reasons"][0]
    assert not verdict(session={}, purpose="disconnect")["allowed"], "a disconnect release needs the disconnect"


@pytest.mark.parametrize("kw", [dict(purpose="later"), dict(grace_minutes=-1), dict(woken_at="monday")])
def test_bad_input_is_a_clear_error(kw):
    with pytest.raises(InvalidInput):
        verdict(**kw)
