"""The autoscale module, run as a real process, on both backends from one suite (issue 8).

libvirt: a real QEMU guest; a CPU burner started inside it (guest agent) saturates its vCPU as the guest sees it
(its /proc/stat, given to the round as the reading), the module hot-adds vCPUs and the guest itself reports them
(SDSTAT cpus=); when the burner stops, the quota comes down after the hysteresis. The balloon test lets the module
measure the guest (memory statistics) itself. Time is driven through the policy state (its cooldown timestamps), never by sleeping minutes.
Proxmox VE: the stand-in has no guest to burn, so the same rounds get their readings through ``metrics`` (as an
event would bring them) and the result says what took effect live and what waits (pending).
"""

from __future__ import annotations

import copy
import datetime
import time

import pytest

from integration import testbed
from integration.desks import LibvirtDesk, ProxmoxDesk
from integration.module_runner import run_module
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import autoscale as pol

# A tiny test guest: a margin of 256 MiB over its used memory would exceed its whole 512 MiB maximum.
POLICY = {"memory_margin_mib": 48}
BOUNDS = {"cpu": {"min": 0.2}, "memory_mib": {"min": 192}}
HOST = {"cpu_overcommit": 64.0, "memory_reserve_mib": 256}  # a shared 2-CPU test machine


BOTH = [pytest.param("libvirt", marks=pytest.mark.libvirt), pytest.param("proxmox", marks=pytest.mark.pve)]
# Tests that run commands inside the libvirt guest need the guest agent helpers of the test bed.
WITH_GUEST_COMMANDS = BOTH if hasattr(testbed, "guest_spawn") else BOTH[1:]


def face(request):
    if request.param == "libvirt":
        return LibvirtDesk(request.getfixturevalue("libvirt_testbed"))
    return ProxmoxDesk(request.getfixturevalue("pve_stand_in"))


@pytest.fixture(params=BOTH)
def desk(request):
    desk_face = face(request)
    try:
        yield desk_face
    finally:
        desk_face.cleanup()


@pytest.fixture(params=WITH_GUEST_COMMANDS)
def guest_desk(request):
    desk_face = face(request)
    try:
        yield desk_face
    finally:
        desk_face.cleanup()


def create_args(desk, name, user):
    args = desk.create_args(name, user)
    if "boot" in args and "no_timer_check" not in args["boot"]["cmdline"]:
        # no_timer_check: the boot-time IO-APIC timer check panics a TCG guest starved by a busy host
        args["boot"] = dict(args["boot"], cmdline=args["boot"]["cmdline"] + " no_timer_check")
    return args


def ok(result):
    assert not result.failed, result.get("msg")
    return result


def iso(moment):
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).isoformat()


def idle_history(now, minutes=600, cores=0.05):
    """A learnt policy state of a mostly idle desktop: one reading a minute for the last ``minutes``."""
    params = pol.PolicyParams()
    state = pol.ResourceState()
    for i in range(minutes):
        pol.record(state, "cpu", cores, now - 60 * (minutes - i), params)
    return {"version": pol.STATE_VERSION, "resources": {"cpu": state.to_dict()}}


def reading(now, cpu_percent, online, used_mib=None, total_mib=None):
    memory = {} if used_mib is None else {"available_mib": total_mib, "unused_mib": total_mib - used_mib}
    return {"sampled_at": iso(now), "cpu_percent": cpu_percent, "online_vcpus": online, "memory": memory,
            "disks": {}, "nets": {}}


def entry_of(result, name):
    (entry,) = [d for d in result["desktops"] if d["name"] == name]
    return entry


def decision(entry, resource):
    (found,) = [d for d in entry["decisions"] if d["resource"] == resource]
    return found


def age_last_changes(states, name, seconds):
    """Move every cooldown timestamp of ``name`` back: as if the last change were ``seconds`` older."""
    states = copy.deepcopy(states)
    for res in states[name]["resources"].values():
        if res.get("last_change_at") is not None:
            res["last_change_at"] -= seconds
    return states


class Burner:
    """A CPU burner inside the libvirt guest, or readings that say the same on Proxmox VE."""

    def __init__(self, desk, name):
        self.desk, self.name = desk, name
        self.dom = desk.conn.lookupByName(name) if desk.observes_guest else None
        self.burning = False

    def start(self):
        self.burning = True
        if self.dom is not None:
            testbed.guest_spawn(self.dom, "while :; do :; done")

    def stop(self):
        self.burning = False
        if self.dom is not None:
            # The shells running the loop line ("whil[e]" so this killer's own command line does not match).
            killer = "for p in $(pidof sh); do grep -q 'whil[e] :' /proc/$p/cmdline && kill $p; done; true"
            rc, _out, err = testbed.guest_exec(self.dom, ["/bin/sh", "-c", killer])
            assert rc == 0, err

    def metrics(self, online):
        """The reading the round decides on. libvirt: the guest's own CPU use (its /proc/stat over 2 s, read
        through the guest agent): on a loaded shared test machine a TCG vCPU gets a fraction of a host CPU, so
        the host-side CPU time would not show the guest's saturation. Proxmox VE: what a burning guest reports."""
        if self.dom is None:
            return {self.name: reading(time.time(), 100.0 if self.burning else 2.0, online, used_mib=180,
                                       total_mib=256)}
        rc, out, err = testbed.guest_exec(self.dom, ["/bin/sh", "-c",
                                                     "head -1 /proc/stat; sleep 2; head -1 /proc/stat"])
        assert rc == 0, err
        first, second = ([int(v) for v in line.split()[1:]] for line in out.strip().splitlines())
        deltas = [b - a for a, b in zip(first, second)]
        idle = deltas[3] + deltas[4]  # idle + iowait
        busy_percent = 100.0 * (sum(deltas) - idle) / max(sum(deltas), 1)
        return {self.name: reading(time.time(), busy_percent, online)}


def autoscale(desk, name, states, burner=None, online=1, **extra):
    args = dict(desk.connection, desktops=[name], bounds=BOUNDS, policy=POLICY, host=HOST, interval=2.0,
                policy_state=states)
    if burner is not None:
        args["metrics"] = burner.metrics(online)
    args.update(extra)
    return run_module("autoscale", args)


def test_burner_hot_adds_vcpus_then_the_quota_comes_down_after_the_hysteresis(guest_desk):
    desk = guest_desk
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(create_args(desk, name, "alice"), state="running")))
    if desk.observes_guest:
        desk.wait_booted(name, timeout=300)
    states = {name: idle_history(time.time())}
    burner = Burner(desk, name)
    burner.start()

    # Check mode shows the decision and changes nothing.
    time.sleep(1)  # the burner has started
    preview = ok(run_module("autoscale", dict(desk.connection, desktops=[name], bounds=BOUNDS, policy=POLICY,
                                              host=HOST, interval=2.0, policy_state=states,
                                              metrics=burner.metrics(1)), check=True))
    assert decision(entry_of(preview, name), "cpu")["action"] == "up", entry_of(preview, name)["decisions"]
    assert ok(run_module("desktop_info", dict(desk.connection, name=name)))["desktops"][0]["live"]["vcpus"] == 1

    up = ok(autoscale(desk, name, states, burner))
    entry = entry_of(up, name)
    cpu = decision(entry, "cpu")
    assert up.changed and cpu["action"] == "up" and "saturated" in cpu["reason"], entry
    assert cpu["after"] > 1
    assert "vcpus" in entry["live"] + entry["pending"]
    vcpus_after = max(c["after"] for c in entry["changes"] if c["field"] == "vcpus")
    if desk.observes_guest:
        assert "vcpus" in entry["live"]
        assert desk.guest_stat(name, cpus=vcpus_after)["cpus"] == vcpus_after  # the guest sees them
    states = up["policy_state"]

    burner.stop()
    # Two low readings in a row are needed (hysteresis); the cooldown since the change is aged through the state.
    actions = []
    for _round in range(2):
        states = age_last_changes(states, name, 3600)
        run = ok(autoscale(desk, name, states, burner, online=vcpus_after))
        states = run["policy_state"]
        actions.append(decision(entry_of(run, name), "cpu"))
    assert [a["action"] for a in actions] == ["hold", "down"], [a["reason"] for a in actions]
    assert "1 of 2" in actions[0]["reason"]
    after = ok(run_module("desktop_info", dict(desk.connection, name=name)))["desktops"][0]
    live_or_config = after["live"] if desk.observes_guest else after["config"]
    assert 0 < live_or_config["cpu_limit"] < vcpus_after  # a quota, not an unplug
    assert after["live"]["vcpus"] == vcpus_after


def test_a_rerun_on_the_same_readings_changes_nothing(desk):
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(create_args(desk, name, "bob"), state="running")))
    now = time.time()
    metrics = {name: reading(now, 100.0, 1, used_mib=100, total_mib=256)}
    first = ok(autoscale(desk, name, {}, metrics=metrics))
    assert first.changed
    again = ok(autoscale(desk, name, first["policy_state"], metrics=metrics))
    assert not again.changed and "already decided" in entry_of(again, name)["skipped"]


def test_the_balloon_never_goes_below_what_the_guest_uses(guest_desk):
    desk = guest_desk
    margin = 128
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(create_args(desk, name, "carol"), state="running")))
    if desk.observes_guest:
        desk.wait_booted(name, timeout=300)
        dom = desk.conn.lookupByName(name)
        # Fill 120 MiB of tmpfs: memory the guest uses and cannot give back.
        fill = ("mkdir -p /dev/shm && mount -t tmpfs -o size=400m tmpfs /dev/shm 2>/dev/null; "
                "dd if=/dev/zero of=/dev/shm/fill bs=1M count=120")
        rc, _out, err = testbed.guest_exec(dom, ["/bin/sh", "-c", fill])
        assert rc == 0, err
        extra = {}
    else:
        extra = {"metrics": {name: reading(time.time(), 5.0, 1, used_mib=170, total_mib=256)}}
    result = ok(autoscale(desk, name, {}, policy={"memory_margin_mib": margin}, **extra))
    entry = entry_of(result, name)
    memory = decision(entry, "memory")
    assert memory["usage"] is not None, entry
    floor = memory["usage"] + max(margin, 0.1 * memory["usage"])
    assert memory["after"] >= floor, memory
    assert memory["action"] == "up" and "never below" in memory["reason"]
    facts = ok(run_module("desktop_info", dict(desk.connection, name=name)))["desktops"][0]
    assert facts["live"]["memory_mib"] >= floor


def test_paused_desktops_are_left_alone(desk):
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(create_args(desk, name, "dave"), state="paused")))
    metrics = {name: reading(time.time(), 100.0, 1, used_mib=200, total_mib=256)}
    result = ok(autoscale(desk, name, {}, metrics=metrics))
    entry = entry_of(result, name)
    assert not result.changed and "paused" in entry["skipped"] and not entry["decisions"]


@pytest.mark.parametrize("args, words", [
    ({"desktops": ["no-such-desktop-xyz"]}, "No managed desktop is named no-such-desktop-xyz"),
    ({"bounds": {"cpu": {"min": 4, "max": 2}}}, "min 4 is above max 2"),
    ({"bounds": {"cpu": {"min": "lots"}}}, "min"),
    ({"bounds": {"cpu": "fast"}}, "dictionary requested"),
    ({"policy": {"quantile": 3}}, "quantile"),
    ({"stages": {"x": {"vcpus": "many"}}}, "stages.x"),
    ({"now": "yesterday"}, "now"),
])
def test_bad_input_is_a_clear_error(pve_stand_in, args, words):
    desk = ProxmoxDesk(pve_stand_in)
    result = run_module("autoscale", dict(desk.connection, **args))
    assert result.failed and words in result["msg"], result.get("msg")
    assert "Traceback" not in result.get("msg", "") and "exception" not in result
