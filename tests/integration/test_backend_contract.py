"""The backend contract (issue 11 section 1): one table of cases, run against every backend.

Each case is a desktop state x a requested change -> what ``classify`` predicts (check mode), what ``apply``
reports (the real run), or the error type both must raise. libvirt runs on the real daemon with one real guest
taken through the states; Proxmox VE runs on the stand-in the same way. A value given per backend is a documented
difference (docs/decisions.md D19); everything else must hold on both.

New operations (migration, secondary NICs, firewall sets) join ``RESOURCE_CASES`` / ``LIFECYCLE_CASES``.
"""

from __future__ import annotations

from integration.desks import SHADOW

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.select import select_backend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.resources import (
    parse_target, resource_changes,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import ShadowSpec

LIVE, CONFIG, PENDING = "live", "config", "pending"
STATES = ("shutoff", "saved", "running", "paused")  # the order one desktop is taken through
SAVED_DIFFERS = {"libvirt": PENDING, "proxmox": "Conflict"}  # D19: PVE's hibernation lock refuses config changes


def _by_state(shutoff, saved, running, paused):
    return dict(zip(("shutoff", "saved", "running", "paused"), (shutoff, saved, running, paused)))


# name -> (target from the current resources, {state: expectation}, apply it?). An expectation is a mode
# (classify predicts it and apply reports it), an error type name (both raise it), a {backend: ...} dict for a
# documented difference, or "-" for "asks for no change" (nothing to classify).
RESOURCE_CASES = {
    "memory within the maximum": (
        lambda cur: {"memory_mib": 384 if cur.memory_mib != 384 else 320},
        _by_state(CONFIG, SAVED_DIFFERS, LIVE, LIVE), True),
    "CPU limit": (
        lambda cur: {"cpu_limit": 0.5 if cur.cpu_limit != 0.5 else 0.75},
        _by_state(CONFIG, SAVED_DIFFERS, LIVE, LIVE), True),
    "one more vCPU": (
        lambda cur: {"vcpus": cur.vcpus + 1},
        _by_state(CONFIG, SAVED_DIFFERS, LIVE, LIVE), True),
    "disk I/O limit": (
        lambda cur: {"disk_io": {"disk0": {"total_iops": 500 if cur.disk_io["disk0"].total_iops != 500 else 400}}},
        _by_state(CONFIG, SAVED_DIFFERS, LIVE, LIVE), True),
    # GPUs are classified only: a made-up PCI address in a definition would make the next start fail.
    "a GPU": (
        lambda cur: {"gpu": ["0000:65:00.0"]},
        _by_state(CONFIG, SAVED_DIFFERS, PENDING, PENDING), False),
    "memory over the maximum": (
        lambda cur: {"memory_mib": SHADOW["max_memory_mib"] + 1},
        _by_state(*["InvalidInput"] * 4), False),
    "vCPUs over the maximum": (
        lambda cur: {"vcpus": SHADOW["max_vcpus"] + 1},
        _by_state(*["InvalidInput"] * 4), False),
    "the same values again": (
        lambda cur: {"vcpus": cur.vcpus, "memory_mib": cur.memory_mib},
        _by_state(*["-"] * 4), False),
}

# operation -> {state: None (allowed) | error type}; run before the resource cases of the state, changing nothing.
LIFECYCLE_CASES = {
    "save": _by_state("Conflict", None, None, None),
    "pause": _by_state("Conflict", "Conflict", None, None),
    "remove": _by_state(None, None, "Conflict", "Conflict"),
    "snapshot_create": _by_state(None, "Conflict", None, None),
}
REFUSALS_ONLY = {  # the calls that are checked here only where the contract says they must fail
    "save": lambda backend, name: backend.save(name),
    "pause": lambda backend, name: backend.pause(name),
    "remove": lambda backend, name: backend.remove(name, remove_storage=True),
    "snapshot_create": lambda backend, name: backend.snapshot_create(name, "contract", with_memory=True),
}


def _expected(expectation, backend_name):
    return expectation[backend_name] if isinstance(expectation, dict) else expectation


def _spec(desk, name):
    args = desk.create_args(name, "contract")
    connection = set(desk.connection)
    return ShadowSpec(name=name, user="contract", source=args["source"], storage=args.get("storage"),
                      network=args.get("network"), boot=args.get("boot") or {},
                      machine={"domain_type": args["domain_type"]} if "domain_type" in args else {},
                      **{k: v for k, v in SHADOW.items() if k not in connection})


def _enter(backend, desk, name, state):
    if state == "saved":
        backend.start(name)  # saved mid-boot is as good as booted for the contract (no guest check here)
        backend.save(name)
    elif state == "running":
        backend.start(name)
    elif state == "paused":
        backend.pause(name)
    assert backend.get(name).state == state


def _check_lifecycle(backend, name, state, outcomes):
    for operation, by_state in LIFECYCLE_CASES.items():
        want = by_state[state]
        if want is None:
            continue
        try:
            REFUSALS_ONLY[operation](backend, name)
            got = "allowed"
        except ShadowDeskError as exc:
            got = type(exc).__name__
        outcomes.append((state, operation, want, got))
        assert backend.get(name).state == state, "a refused %s changed the state" % operation


def _check_resources(backend, name, state, outcomes):
    for case, (make_target, by_state, apply) in RESOURCE_CASES.items():
        want = _expected(by_state[state], backend.name)
        facts = backend.get(name)
        current = facts.live if facts.is_active else facts.config
        try:
            changes = resource_changes(facts, parse_target(make_target(current)))
            predicted = [backend.classify(facts, change)[0] for change in changes]
        except ShadowDeskError as exc:
            outcomes.append((state, case, want, type(exc).__name__))
            continue
        if not changes:
            outcomes.append((state, case, want, "-"))
            continue
        outcomes.append((state, case + " (check mode)", want, sorted(set(predicted))[0]))
        if apply:
            for change, mode in zip(changes, predicted):
                change.mode = mode
            try:
                applied = backend.apply(facts, changes)
                got = sorted({change.mode for change in applied})[0]
            except ShadowDeskError as exc:
                got = type(exc).__name__
            outcomes.append((state, case + " (real run)", want, got))


def test_backend_contract(desk):
    name = desk.new_name()
    options = dict(desk.connection)
    backend = select_backend(options.pop("backend"), options)
    outcomes = []  # (state, case, expected, got): compared at the end so one run shows every divergence
    try:
        backend.create(_spec(desk, name))
        for state in STATES:
            _enter(backend, desk, name, state)
            _check_lifecycle(backend, name, state, outcomes)
            _check_resources(backend, name, state, outcomes)
    finally:
        backend.close()
    divergences = [o for o in outcomes if o[2] != o[3]]
    assert not divergences, "\n".join("%s / %s: expected %s, got %s" % o for o in divergences)
    assert len(outcomes) >= len(STATES) * len(RESOURCE_CASES)
