"""Inputs for allocation plan tests: a workday forecast, desktops, nodes, prices (plain data, like the contracts)."""

import copy

START = "2026-11-23T00:00:00Z"
SLOT = 30
N = 48


def workday(login_slot=16, logout_slot=35, band=0.1, uncertain_before=0):
    """p=0.9 from login to logout; p_high widens by ``band`` and ``uncertain_before`` slots earlier."""
    p = [0.0] * N
    for i in range(login_slot, logout_slot):
        p[i] = 0.9
    high = [min(1.0, v + band) if v else 0.0 for v in p]
    for i in range(max(0, login_slot - uncertain_before), login_slot):
        high[i] = 0.4
    low = [max(0.0, v - band) for v in p]
    return p, low, high


def forecast(user="alice", method="prophet", sessions=40, **kwargs):
    p, low, high = workday(**kwargs)
    return {"user": user, "method": method, "reason": "", "generated_at": "2026-11-22T20:00:00Z",
            "slot_minutes": SLOT, "start": START, "p": p, "p_low": low, "p_high": high,
            "history": {"first": "2026-06-01T08:00:00Z", "last": "2026-11-20T17:00:00Z", "sessions": sessions,
                        "fingerprint": "x"}}


DESKTOPS = {
    "alice": {"desktop": "desk-alice", "max_vcpus": 4, "max_memory_mib": 8192,
              "net": {"net0": {"rate_kib_s": 100000}}},
    "bob": {"desktop": "desk-bob", "max_vcpus": 4, "max_memory_mib": 8192},
    "carol": {"desktop": "desk-carol", "max_vcpus": 2, "max_memory_mib": 4096},
}
NODES = [
    {"name": "n1", "vcpus": 16, "memory_mib": 65536, "gpus": 0},
    {"name": "n2", "vcpus": 16, "memory_mib": 65536, "gpus": 1},
]
PROFILES = [{"user": "alice", "vcpus": 2, "memory_mib": 4096, "samples": 500,
             "hourly": {str(h): {"cpu_p95": 1.5, "memory_p95_mib": 3000} for h in range(24)}}]
PRICES = {"default": 0.05, "hourly": {"8": 0.06}}
NOW = "2026-11-22T21:00:00Z"


def inputs(**overrides):
    data = {"forecasts": [forecast("alice"), forecast("bob", method="fallback", sessions=3)],
            "desktops": copy.deepcopy(DESKTOPS), "nodes": copy.deepcopy(NODES),
            "profiles": copy.deepcopy(PROFILES), "prices": copy.deepcopy(PRICES), "measured": None,
            "options": None, "now": NOW}
    data.update(overrides)
    return data
