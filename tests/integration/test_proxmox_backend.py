"""ProxmoxBackend against the PVE stand-in (real HTTPS, PVE's schema, qemu-server semantics).

Stand-in deviations from real PVE found while writing these tests, since fixed in the stand-in (its own tests in
``test_pve_stand_in.py`` pin the qemu-server behaviour):

1. ``PUT .../config delete=vmstate`` on a hibernated VM used to be refused (``VM n is locked (suspended)``, and
   ``delete: unknown option 'vmstate'`` without the lock). Like qemu-server's ``update_vm_api`` the stand-in now
   ignores and removes the ``suspended`` lock (plus ``runningmachine``/``runningcpu``) and frees the state volume;
   ``test_discard_saved_state`` and ``test_discard_saved_state_sends_what_pve_accepts`` cover it.
2. ``DELETE /nodes/{node}/qemu/{vmid}`` of a hibernated VM used to be refused; like ``destroy_vm`` the stand-in now
   skips the lock check for ``suspended`` (``test_remove_hibernated_shadow``).
3. A NIC ``rate`` change on a running VM used to need ``network`` in ``hotplug``; like ``vmconfig_update_net`` the
   stand-in now applies in-place NIC changes (same model/MAC/queues/mtu, bridge kept) without the hot-plug feature.
"""

from __future__ import annotations

import pytest
from stand_ins.pve_api_server import PveStandIn  # tests/ is on sys.path (pytest.ini pythonpath)

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.proxmox import ProxmoxBackend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.resources import (
    resource_changes,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    BackendUnavailable, Conflict, DesktopNotFound, InvalidInput, OperationRefused,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    APPLIED_CONFIG, APPLIED_LIVE, APPLIED_PENDING, ResourceChange, Resources, ShadowSpec,
)

pytestmark = pytest.mark.pve

TEMPLATE = 9000
NAME = "desk-alice"


@pytest.fixture
def pve():
    with PveStandIn(nodes=("pve1", "pve2"), task_duration=0.05, file_lock_timeout=2.0) as stand_in:
        stand_in.add_template("pve1", TEMPLATE, "golden", net0="virtio,bridge=vmbr0", memory="4096")
        yield stand_in


def options(pve, **extra):
    opts = dict(backend="proxmox", api_host=pve.host, api_port=pve.port, api_user=pve.token_user,
                api_token_id=pve.token_name, api_token_secret=pve.token_value, ca_path=pve.ca_path,
                validate_certs=True, node=None, api_timeout=10, lock_timeout=5, poll_interval=0.02)
    opts.update(extra)
    return opts


@pytest.fixture
def backend(pve):
    with ProxmoxBackend(options(pve)) as b:
        yield b


def spec(**kw):
    values = dict(name=NAME, user="alice", source=str(TEMPLATE), max_vcpus=4, max_memory_mib=8192,
                  shadow_vcpus=1, shadow_memory_mib=2048)
    values.update(kw)
    return ShadowSpec(**values)


def vmid_of(pve, name):
    for vmid, vm in pve.snapshot_state()["vms"].items():
        if vm["config"].get("name") == name:
            return vmid
    return None


def classified(backend, facts, target):
    changes = resource_changes(facts, target)
    for change in changes:
        change.mode, change.reason = backend.classify(facts, change)
    return changes


# -- lifecycle ---------------------------------------------------------------------------------------------------
def test_shadow_lifecycle_from_template(pve, backend):
    template_before = pve.vm(TEMPLATE)
    facts = backend.create(spec())
    vmid = int(facts.backend_id)
    conf = pve.vm(vmid)["config"]
    # linked clone, full size as maximum, shadow size current, hot-plug ready, tagged
    assert conf["scsi0"].startswith("local-lvm:base-9000-disk-0/vm-%d-disk-0" % vmid)
    assert int(conf["cores"]) * int(conf["sockets"]) == 4 and conf["vcpus"] == "1"
    assert conf["memory"] == "8192" and conf["balloon"] == "2048" and conf["numa"] == "1"
    assert {"cpu", "network", "disk"} <= set(conf["hotplug"].split(","))  # memory moves by balloon
    assert set(conf["tags"].split(";")) == {"shadowdesk", "sd-user-alice"}
    assert facts.state == "shutoff" and facts.user == "alice" and facts.node == "pve1"
    assert facts.max_vcpus == 4 and facts.max_memory_mib == 8192
    assert facts.live.vcpus == 1 and facts.live.memory_mib == 2048
    assert facts.disks[0].backing == "local-lvm:base-9000-disk-0"
    assert facts.interfaces == ["net0"]
    with pytest.raises(Conflict):
        backend.create(spec())

    backend.start(NAME)
    assert backend.get(NAME).state == "running"
    backend.pause(NAME)
    assert backend.get(NAME).state == "paused"
    backend.pause(NAME)  # idempotent
    backend.resume(NAME)
    assert backend.get(NAME).state == "running"

    backend.save(NAME)
    saved = backend.get(NAME)
    assert saved.state == "saved" and saved.has_saved_state
    assert pve.vm(vmid)["config"]["lock"] == "suspended"
    backend.start(NAME)  # restore from the hibernation image
    restored = backend.get(NAME)
    assert restored.state == "running" and not restored.has_saved_state
    assert pve.requests("POST", r"/status/start$")  # resumed through start, not a new VM

    backend.pause(NAME)
    backend.stop(NAME)  # a paused VM is resumed, then shut down (PVE refuses shutdown of a paused VM)
    assert backend.get(NAME).state == "shutoff"
    assert pve.requests("POST", r"/status/shutdown$")

    with pytest.raises(Conflict, match="remove_storage"):
        backend.remove(NAME)
    assert vmid in pve.snapshot_state()["vms"]  # nothing lost
    backend.remove(NAME, remove_storage=True)
    assert backend.get(NAME) is None
    backend.remove(NAME, remove_storage=True)  # idempotent
    delete = pve.requests("DELETE", r"/qemu/%d$" % vmid)[-1]
    assert delete["params"].get("purge") == "1"
    assert pve.vm(TEMPLATE) == template_before  # the template is never touched


def test_create_on_other_node_and_migrate(pve, backend):
    facts = backend.create(spec(node="pve2"))
    assert facts.node == "pve2"
    backend.start(NAME)
    backend.migrate(NAME, "pve1")
    moved = backend.get(NAME)
    assert moved.node == "pve1" and moved.state == "running"
    assert pve.requests("POST", r"/migrate$")[-1]["params"].get("online") == "1"


def test_create_refuses_bad_input(pve, backend):
    with pytest.raises(InvalidInput, match="not a template"):
        pve.add_vm("pve1", 150, "plain")
        backend.create(spec(source="150"))
    with pytest.raises(InvalidInput, match="does not exist"):
        backend.create(spec(source="9999"))
    with pytest.raises(InvalidInput, match="DNS name"):
        backend.create(spec(name="desk_alice"))
    with pytest.raises(InvalidInput, match="storage"):
        backend.create(spec(storage="local"))
    assert set(pve.snapshot_state()["vms"]) == {TEMPLATE, 150}


def test_list_and_get(pve, backend):
    backend.create(spec())
    backend.create(spec(name="desk-bob", user="bob"))
    pve.add_vm("pve1", 300, "unmanaged")
    assert [f.name for f in backend.list()] == ["desk-alice", "desk-bob"]
    assert [f.name for f in backend.list(user="bob")] == ["desk-bob"]
    assert backend.get("nope") is None
    with pytest.raises(DesktopNotFound):
        backend.start("nope")
    with pytest.raises(Conflict, match="not tagged"):
        backend.remove("unmanaged", remove_storage=True)
    util = backend.utilisation(NAME, interval=0)
    assert set(util) >= {"cpu_percent", "memory", "disks", "nets", "sampled_at"}


def test_discard_saved_state(pve, backend):
    backend.create(spec())
    backend.start(NAME)
    backend.save(NAME)
    backend.discard_saved_state(NAME)
    facts = backend.get(NAME)
    assert facts.state == "shutoff" and not facts.has_saved_state


def test_remove_hibernated_shadow(pve, backend):
    backend.create(spec())
    backend.start(NAME)
    backend.save(NAME)
    backend.remove(NAME, remove_storage=True)
    assert backend.get(NAME) is None


def test_discard_saved_state_sends_what_pve_accepts(pve, backend):
    """Dropping a hibernation image is ``PUT config delete=vmstate`` (qemu-server update_vm_api clears the lock)."""
    backend.create(spec())
    backend.start(NAME)
    backend.save(NAME)
    backend.discard_saved_state(NAME)
    put = pve.requests("PUT", r"/config$")[-1]
    assert put["params"]["delete"] == "vmstate"
    vm = pve.vm(int(backend.get(NAME).backend_id))
    assert "vmstate" not in vm["config"] and vm["lock"] is None
    assert backend.get(NAME).state == "shutoff"


# -- resources ---------------------------------------------------------------------------------------------------
def test_live_resize_reports_live_and_pending_truthfully(pve, backend):
    backend.create(spec())
    backend.start(NAME)
    facts = backend.get(NAME)
    target = Resources.from_dict({"vcpus": 3, "memory_mib": 4096, "net": {"net0": {"rate_kib_s": 100}},
                                  "disk_io": {"disk0": {"total_iops": 500, "total_bytes_sec": 10485760}},
                                  "gpu": ["0000:01:00.0"]})
    changes = classified(backend, facts, target)
    predicted = {c.field: c.mode for c in changes}
    assert predicted == {"vcpus": APPLIED_LIVE, "memory_mib": APPLIED_LIVE, "net": APPLIED_LIVE,
                         "disk_io": APPLIED_LIVE, "gpu": APPLIED_PENDING}
    applied = backend.apply(facts, changes)
    assert {c.field: c.mode for c in applied} == predicted
    after = backend.get(NAME)
    assert after.live.vcpus == 3 and after.live.memory_mib == 4096
    assert after.live.net["net0"].rate_kib_s == 100
    assert after.live.disk_io["disk0"].to_dict() == {"total_iops": 500, "total_bytes_sec": 10485760}
    assert after.live.gpu == [] and after.config.gpu == ["0000:01:00.0"]
    assert after.pending == {"hostpci0": "host=0000:01:00.0"}
    vmid = int(after.backend_id)
    conf = pve.vm(vmid)["config"]
    assert "rate=0.09765625" in conf["net0"] and "mbps=10" in conf["scsi0"] and "iops=500" in conf["scsi0"]
    assert conf["cores"] == "4"  # the maximum stays
    # scale down: a CPU limit, never an unplug
    down = classified(backend, after, Resources(vcpus=1))
    assert [(c.field, c.after, c.mode) for c in down] == [("cpu_limit", 1.0, APPLIED_LIVE)]
    backend.apply(after, down)
    assert backend.get(NAME).live.vcpus == 3 and pve.vm(vmid)["config"]["cpulimit"] == "1"


def test_pending_when_hotplug_lacks_cpu(pve, backend):
    backend.create(spec())
    vmid = vmid_of(pve, NAME)
    pve.vms[vmid].config["hotplug"] = "network,disk"  # e.g. an admin narrowed hot-plug
    backend.start(NAME)
    facts = backend.get(NAME)
    changes = classified(backend, facts, Resources(vcpus=2))
    assert [c.mode for c in changes] == [APPLIED_PENDING]
    applied = backend.apply(facts, changes)
    assert [c.mode for c in applied] == [APPLIED_PENDING]
    assert backend.get(NAME).pending == {"vcpus": 2} or backend.get(NAME).pending == {"vcpus": "2"}


def test_shutoff_changes_go_to_config(pve, backend):
    facts = backend.create(spec())
    changes = classified(backend, facts, Resources(vcpus=2, memory_mib=3072))
    assert {c.mode for c in changes} == {APPLIED_CONFIG}
    assert {c.mode for c in backend.apply(facts, changes)} == {APPLIED_CONFIG}
    after = backend.get(NAME)
    assert after.config.vcpus == 2 and after.config.memory_mib == 3072 and after.pending == {}


def test_refused_hotplug_is_an_error_and_keeps_the_change_pending(pve, backend):
    backend.create(spec())
    vmid = vmid_of(pve, NAME)
    pve.vms[vmid].config["balloon"] = "0"  # ballooning off: memory changes are DIMM hot-plug
    pve.vms[vmid].config["memory"] = "4096"
    pve.vms[vmid].config["hotplug"] = "network,disk,usb,cpu,memory"  # DIMM hot-plug, as an admin may set it
    backend.start(NAME)
    pve.refuse_hotplug(vmid)
    facts = backend.get(NAME)
    assert facts.max_memory_mib == 4096  # ballooning off: the size is the maximum, so grow by hand
    change = ResourceChange("memory_mib", None, 4096, 6144)
    assert backend.classify(facts, change)[0] == APPLIED_LIVE
    changes = [change]
    with pytest.raises(OperationRefused, match="device_add") as err:
        backend.apply(facts, changes)
    assert err.value.details["pending"] == {"memory": 6144} or err.value.details["pending"] == {"memory": "6144"}
    assert pve.vm(vmid)["config"]["memory"] == "4096"  # running size kept, nothing lost


def test_apply_on_hibernated_desktop_is_a_conflict(pve, backend):
    backend.create(spec())
    backend.start(NAME)
    backend.save(NAME)
    facts = backend.get(NAME)
    with pytest.raises(Conflict, match="suspended"):  # check mode (classify) fails like the real run
        classified(backend, facts, Resources(vcpus=2))
    with pytest.raises(Conflict, match="hibernated"):
        backend.apply(facts, [ResourceChange("vcpus", None, 1, 2)])


# -- snapshots ---------------------------------------------------------------------------------------------------
def test_snapshots(pve, backend):
    backend.create(spec())
    backend.start(NAME)
    backend.snapshot_create(NAME, "before_update", with_memory=True, description="patch day")
    backend.snapshot_create(NAME, "disk_only", with_memory=False)
    snaps = {s.name: s for s in backend.get(NAME).snapshots}
    assert set(snaps) == {"before_update", "disk_only"}
    assert snaps["before_update"].with_memory and snaps["before_update"].description == "patch day"
    assert not snaps["disk_only"].with_memory and snaps["before_update"].created.endswith("Z")
    with pytest.raises(Conflict):
        backend.snapshot_create(NAME, "disk_only")
    with pytest.raises(InvalidInput):
        backend.snapshot_create(NAME, "1-bad")
    backend.snapshot_revert(NAME, "before_update")
    assert backend.get(NAME).state == "running"  # RAM snapshot: running after rollback
    backend.snapshot_delete(NAME, "disk_only")
    assert [s.name for s in backend.get(NAME).snapshots] == ["before_update"]
    with pytest.raises(DesktopNotFound):
        backend.snapshot_delete(NAME, "disk_only")


# -- locks, tasks and API errors ---------------------------------------------------------------------------------
def test_lock_held_then_released_is_retried(pve, backend):
    backend.create(spec())
    vmid = vmid_of(pve, NAME)
    pve.hold_lock(vmid, "backup", seconds=0.6)
    backend.start(NAME)
    assert backend.get(NAME).state == "running"
    assert len(pve.requests("POST", r"/status/start$")) >= 2  # refused while locked, then retried
    # a lock that fails the config task (POST config checks it in the worker) is retried as well
    pve.hold_lock(vmid, "snapshot", seconds=0.6)
    facts = backend.get(NAME)
    backend.apply(facts, classified(backend, facts, Resources(vcpus=2)))
    assert backend.get(NAME).live.vcpus == 2


def test_lock_held_too_long_is_a_clear_error(pve):
    with ProxmoxBackend(options(pve, lock_timeout=1)) as backend:
        backend.create(spec())
        vmid = vmid_of(pve, NAME)
        pve.hold_lock(vmid, "backup", seconds=None)
        with pytest.raises(OperationRefused, match=r"still locked \(backup\)") as err:
            backend.start(NAME)
        assert err.value.details["lock"] == "backup"
        assert pve.vm(vmid)["status"] == "stopped"


def test_task_ending_with_an_error(pve, backend):
    backend.create(spec())
    pve.fail_next_task("qmstart", "start failed: QEMU exited with code 1")
    with pytest.raises(OperationRefused, match="QEMU exited with code 1") as err:
        backend.start(NAME)
    assert err.value.details["exitstatus"] == "start failed: QEMU exited with code 1"
    assert any("TASK ERROR" in line for line in err.value.details["task_log"])
    assert err.value.details["upid"].startswith("UPID:pve1:")
    assert backend.get(NAME).state == "shutoff"


def test_http_400_per_parameter_errors_are_surfaced_and_the_clone_cleaned_up(pve, backend):
    with pytest.raises(OperationRefused, match="net0") as err:
        backend.create(spec(network="not a bridge!"))
    assert err.value.details["status_code"] == 400
    assert "net0" in err.value.details["errors"]
    assert vmid_of(pve, NAME) is None  # the half-made clone is gone, the template is intact
    assert TEMPLATE in pve.snapshot_state()["vms"]


def test_http_500(pve, backend):
    backend.create(spec())
    pve.fail_next_request(r"/status/current$", 500, "unable to read status - got timeout")
    with pytest.raises(OperationRefused, match="got timeout") as err:
        backend.get(NAME)
    assert err.value.details["status_code"] == 500


def test_tls_with_the_wrong_ca(pve, tmp_path):
    trustme = pytest.importorskip("trustme")
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with ProxmoxBackend(options(pve, ca_path=str(other))) as backend:
        with pytest.raises(BackendUnavailable, match="certificate verify failed.*ca_path"):
            backend.list()
    with ProxmoxBackend(options(pve, ca_path=None)) as backend:  # system CAs do not know the stand-in
        with pytest.raises(BackendUnavailable, match="validate_certs"):
            backend.list()
    with ProxmoxBackend(options(pve, ca_path=None, validate_certs=False)) as backend:
        assert backend.list() == []


def test_wrong_token_is_a_clear_error(pve):
    with ProxmoxBackend(options(pve, api_token_secret="wrong")) as backend:
        with pytest.raises(BackendUnavailable, match="api_token_secret") as err:
            backend.list()
    assert err.value.details["status_code"] == 401
    assert "wrong" not in str(err.value)  # the secret is not echoed


def test_password_auth(pve):
    opts = options(pve, api_token_id=None, api_token_secret=None, api_password=pve.password)
    with ProxmoxBackend(opts) as backend:
        backend.create(spec())
        backend.start(NAME)
        assert backend.get(NAME).state == "running"
    with ProxmoxBackend(dict(opts, api_password="wrong")) as backend:
        with pytest.raises(BackendUnavailable, match="refused the login"):
            backend.list()


def test_unreachable_host(pve):
    with ProxmoxBackend(options(pve, api_port=1, api_timeout=2)) as backend:
        with pytest.raises(BackendUnavailable, match="Cannot reach"):
            backend.list()
