"""Property tests of the one time module: aware UTC in, ``...Z`` out, local wall time by offset, slots."""

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = dt.timezone.utc
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60)     # every offset a real zone can have
MOMENTS = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1),
                       timezones=st.just(UTC))
SLOTS = st.sampled_from([1, 5, 10, 15, 20, 30, 60, 120, 1440])


@given(MOMENTS, OFFSETS)
def test_any_offset_is_the_same_moment(moment, offset):
    zone = dt.timezone(dt.timedelta(minutes=offset))
    assert _time.to_utc(moment.astimezone(zone)) == moment
    assert _time.to_utc(moment.astimezone(zone).isoformat()) == moment
    assert _time.to_utc(moment.astimezone(zone)).tzinfo is UTC


@given(MOMENTS)
def test_z_strings_round_trip_to_whole_seconds(moment):
    text = _time.iso_z(moment)
    assert text.endswith("Z") and len(text) == 20
    assert _time.to_utc(text) == moment.replace(microsecond=0)
    assert _time.iso_z(_time.to_utc(text)) == text


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_naive_input_is_refused_unless_the_offset_is_known(naive):
    for value in (naive, naive.isoformat()):
        with pytest.raises(InvalidInput, match="no UTC offset"):
            _time.to_utc(value, "login")
    assert _time.to_utc(naive, default_offset_min=60) == naive.replace(tzinfo=UTC) - dt.timedelta(hours=1)
    with pytest.raises(InvalidInput, match="naive"):
        _time.iso_z(naive)


@pytest.mark.parametrize("value", ["", "  ", "yesterday", "2026-13-01T00:00:00Z", 17, None, b"2026"])
def test_garbage_is_a_clear_error_not_a_traceback(value):
    with pytest.raises(InvalidInput):
        _time.to_utc(value, "start")


@given(MOMENTS, OFFSETS)
def test_local_wall_time_and_back(moment, offset):
    wall = _time.local_wall(moment, offset)
    assert wall.tzinfo is None
    assert wall == moment.astimezone(dt.timezone(dt.timedelta(minutes=offset))).replace(tzinfo=None)
    assert _time.from_local_wall(wall, offset) == moment


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)),
       st.sampled_from([(60, 120), (-300, -240), (600, 660), (-210, -150), (345, 405)]))
def test_dst_day_sessions_keep_their_own_offset(day, offsets):
    """On a DST change day the history holds sessions with two offsets (e.g. CET +60 and CEST +120): each one's
    wall-clock time comes from its own offset, and the same wall time an hour apart in UTC."""
    winter, summer = offsets
    wall = dt.datetime.combine(day, dt.time(8, 0))
    before, after = _time.from_local_wall(wall, winter), _time.from_local_wall(wall, summer)
    assert before - after == dt.timedelta(minutes=summer - winter)
    assert _time.local_wall(before, winter) == _time.local_wall(after, summer) == wall


@given(MOMENTS, SLOTS)
def test_floor_to_slot(moment, slot):
    floor = _time.floor_to_slot(moment, slot)
    assert floor <= moment < floor + dt.timedelta(minutes=slot)
    assert (floor.hour * 60 + floor.minute) % slot == 0 and floor.second == 0 and floor.microsecond == 0


@given(MOMENTS, MOMENTS, SLOTS)
def test_slot_index_and_start_agree(start, moment, slot):
    index = _time.slot_index(start, moment, slot)
    assert _time.slot_start(start, index, slot) <= moment < _time.slot_start(start, index + 1, slot)


@pytest.mark.parametrize("slot", [0, -15, 1.5, True, "15"])
def test_bad_slots_are_refused(slot):
    with pytest.raises(InvalidInput, match="slot_minutes"):
        _time.floor_to_slot(dt.datetime(2026, 1, 1, tzinfo=UTC), slot)


def test_utc_hour_and_optional_times():
    assert _time.utc_hour("2026-11-23T07:30:00+02:00") == 5
    assert _time.to_utc_or_none(None) is None and _time.to_utc_or_none("") is None
    assert _time.iso_z(None) is None
