# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: pure mapping between Proxmox VE (qemu-server) configuration and the neutral model.

No I/O and no third-party imports (stdlib + ``_model`` + ``_errors``): the Proxmox backend does the HTTP, this file
says what the answers mean and what to send. Every rule here copies qemu-server's behaviour:

- size: ``cores`` x ``sockets`` is the maximum vCPU count, ``vcpus`` the online count (hot-plug needs ``cpu`` in
  ``hotplug``; ``cores``/``sockets`` themselves only change at the next start); ``memory`` is the maximum memory and
  the balloon target ``balloon`` the current size (0 = ballooning off, then ``memory`` is the size and changes
  live only with ``memory`` in ``hotplug`` and ``numa: 1``);
- ``cpulimit``, a NIC's ``rate`` and a disk's ``mbps``/``iops`` change live without any hot-plug feature
  (qemu-server applies them through cgroups, ``tap_rate_limit`` and ``block_set_io_throttle``);
- ``hostpci[n]`` is never hot-plugged: on a running VM it stays in ``[PENDING]``;
- units: a NIC ``rate`` is MiB/s (qemu-server multiplies by 1024*1024), our model KiB/s; a disk ``mbps`` is MiB/s,
  our model bytes/s.
"""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import Conflict, InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    APPLIED_CONFIG, APPLIED_LIVE, APPLIED_PENDING, STATE_PAUSED, STATE_RUNNING, STATE_SAVED, STATE_SHUTOFF,
    DesktopFacts, DiskInfo, DiskLimit, NetLimit, Resources, Snapshot,
)

BACKEND = "proxmox"
MANAGED_TAG = "shadowdesk"
USER_TAG_PREFIX = "sd-user-"
META_MARKER = "shadowdesk-meta:"
DEFAULT_MEMORY_MIB = 512          # qemu-server's default for ``memory``
DEFAULT_HOTPLUG = "network,disk,usb"  # qemu-server's default for ``hotplug``
# No 'memory': a shadow's memory moves live through the balloon up to ``memory`` (the full size), and qemu-server
# refuses to start a VM with memory hot-plug below 1024 MiB of static memory (Memory.pm config()).
SHADOW_HOTPLUG = "network,disk,usb,cpu"
DISK_BUSES = ("scsi", "virtio", "sata", "ide")  # the order disk0, disk1... are numbered in
TRANSIENT_LOCKS = ("backup", "clone", "create", "migrate", "rollback", "snapshot", "snapshot-delete",
                   "suspending")  # 'suspended' is a hibernated VM, not a transient lock

_DNS_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?"
DNS_NAME_RE = re.compile(r"^(?:%s\.)*%s$" % (_DNS_LABEL, _DNS_LABEL))
CONFIGID_RE = re.compile(r"^[a-z][a-z0-9_-]+$", re.I)   # pve-configid (snapshot names)
TAG_RE = re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$", re.I)  # pve-tag (PVE::JSONSchema $PVE_TAG_RE)
_KEY_RE = re.compile(r"^([a-z]+)(\d+)$")
LOCKED_RE = re.compile(r"VM (\d+) is locked \(([\w-]+)\)")
MIB = 1024 * 1024


# -- property strings ----------------------------------------------------------------------------------------------
def parse_propstr(text):
    """``'virtio=AA:..,bridge=vmbr0,rate=10'`` -> ordered ``[[key, value], ...]``; a part without ``=`` has key None
    (the format's default key, e.g. a drive's volume or a NIC's model)."""
    items = []
    for part in (text or "").split(","):
        if not part:
            continue
        if "=" in part:
            key, value = part.split("=", 1)
            items.append([key, value])
        else:
            items.append([None, part])
    return items


def format_propstr(items):
    return ",".join(value if key is None else "%s=%s" % (key, value) for key, value in items)


def propstr_get(items, key, default=None):
    for k, v in items:
        if k == key:
            return v
    return default


def propstr_set(items, key, value):
    """Return a copy with ``key`` set to ``value`` (kept in place when present, appended otherwise); ``None``
    removes it."""
    out = [list(i) for i in items if not (i[0] == key and value is None)]
    if value is None:
        return out
    for item in out:
        if item[0] == key:
            item[1] = value
            return out
    out.append([key, value])
    return out


def format_number(value):
    """A PVE ``number`` without exponent: 0.09765625, 10, 1.5 (exact for KiB/MiB conversions)."""
    dec = Decimal(value)
    text = format(dec, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def kib_to_rate(rate_kib_s):
    return format_number(rate_kib_s / 1024.0)


def rate_to_kib(rate):
    return int(round(float(rate) * 1024)) if rate not in (None, "") else 0


def bytes_to_mbps(total_bytes_sec):
    return format_number(total_bytes_sec / float(MIB))


def mbps_to_bytes(mbps):
    return int(round(float(mbps) * MIB)) if mbps not in (None, "") else 0


# -- small config readers ------------------------------------------------------------------------------------------
def _int(value, default=0):
    try:
        return int(str(value).split(",", maxsplit=1)[0].split("=")[-1])
    except (TypeError, ValueError):
        return default


def _bool(value):
    return str(value).strip().lower() in ("1", "on", "yes", "true")


def memory_max_mib(conf):
    """``memory`` is ``[current=]<MiB>`` (PVE 9 property string) or a plain number (older PVE)."""
    value = conf.get("memory")
    if value in (None, ""):
        return DEFAULT_MEMORY_MIB
    items = parse_propstr(str(value))
    current = propstr_get(items, "current", propstr_get(items, None))
    return _int(current, DEFAULT_MEMORY_MIB)


def ballooning(conf):
    """Ballooning is on unless ``balloon: 0``."""
    return conf.get("balloon") in (None, "") or _int(conf.get("balloon"), 1) != 0


def memory_now_mib(conf):
    """The memory size in our model: the balloon target when ballooning is on, else ``memory``."""
    if ballooning(conf) and conf.get("balloon") not in (None, ""):
        return _int(conf.get("balloon"))
    return memory_max_mib(conf)


def max_vcpus(conf):
    return max(1, _int(conf.get("cores"), 1)) * max(1, _int(conf.get("sockets"), 1))


def online_vcpus(conf):
    vcpus = _int(conf.get("vcpus"), 0)
    return vcpus if vcpus > 0 else max_vcpus(conf)


def hotplug_features(conf):
    """qemu-server parse_hotplug_features: '0' none, '1' or unset the default, else a list."""
    value = conf.get("hotplug")
    value = DEFAULT_HOTPLUG if value in (None, "", "1") else str(value)
    if value == "0":
        return set()
    return {f.strip() for f in value.split(",") if f.strip()}


def parse_tags(text):
    return [t for t in re.split(r"[,;\s]+", text or "") if t]


def sanitise_tag(text):
    """Map a user name to PVE's tag alphabet (``[a-z0-9_][a-z0-9_-+.]*``, lower case)."""
    tag = re.sub(r"[^a-z0-9_\-+.]", "_", (text or "").lower())
    if not tag or not re.match(r"[a-z0-9_]", tag[0]):
        tag = "_" + tag
    return tag


def user_tag(user):
    return USER_TAG_PREFIX + sanitise_tag(user)


def shadow_tags(user, existing=""):
    tags = [t for t in parse_tags(existing) if t != MANAGED_TAG and not t.startswith(USER_TAG_PREFIX)]
    tags = sorted(set(tags + [MANAGED_TAG, user_tag(user)]))
    return ";".join(tags)


def parse_meta(description):
    """The JSON metadata we keep on a line ``shadowdesk-meta: {...}`` of the VM description."""
    for line in (description or "").splitlines():
        line = line.strip()
        if line.startswith(META_MARKER):
            try:
                meta = json.loads(line[len(META_MARKER):].strip())
            except ValueError:
                return {}
            return meta if isinstance(meta, dict) else {}
    return {}


def format_description(meta, text="Shadow desktop managed by ShadowDesk (shadowdesk.vdi)."):
    return "%s\n%s %s" % (text, META_MARKER, json.dumps(meta, sort_keys=True, separators=(",", ":")))


def key_sort(key):
    match = _KEY_RE.match(key)
    return (match.group(1), int(match.group(2))) if match else (key, 0)


def disk_keys(conf):
    """The VM's disks in our order (``scsi*``, ``virtio*``, ``sata*``, ``ide*``; CD-ROMs left out)."""
    keys = []
    for bus in DISK_BUSES:
        found = []
        for key, value in conf.items():
            match = _KEY_RE.match(key)
            if not match or match.group(1) != bus:
                continue
            items = parse_propstr(str(value))
            if propstr_get(items, "media") == "cdrom" or propstr_get(items, None) in ("cdrom", "none"):
                continue
            found.append(key)
        keys += sorted(found, key=key_sort)
    return keys


def net_keys(conf):
    return sorted((k for k in conf if re.match(r"^net\d+$", k)), key=key_sort)


def hostpci_keys(conf):
    return sorted((k for k in conf if re.match(r"^hostpci\d+$", k)), key=key_sort)


def disk_map(conf):
    """``{'disk0': 'scsi0', ...}``"""
    return {"disk%d" % i: key for i, key in enumerate(disk_keys(conf))}


def net_map(conf):
    """``{'net0': 'net0', ...}`` (our net<i> is the i-th NIC by index, usually the same name)."""
    return {"net%d" % i: key for i, key in enumerate(net_keys(conf))}


def backing_of(volid):
    """The template volume a linked clone is based on (``local:9000/base-9000-disk-0.qcow2/101/vm-101-...``,
    ``local-lvm:base-9000-disk-0/vm-101-disk-0``)."""
    if ":" not in volid:
        return ""
    storage, volname = volid.split(":", 1)
    parts = volname.split("/")
    for i, part in enumerate(parts):
        if part.startswith("base-"):
            base = "/".join(parts[:i + 1])
            return "%s:%s" % (storage, base)
    return ""


def gpu_of(value):
    items = parse_propstr(str(value))
    mapping = propstr_get(items, "mapping")
    if mapping:
        return "mapping=%s" % mapping
    return propstr_get(items, "host", propstr_get(items, None, ""))


# -- config -> model -----------------------------------------------------------------------------------------------
def resources_of(conf):
    """The neutral ``Resources`` a qemu-server config describes."""
    nets = {}
    for ours, key in net_map(conf).items():
        nets[ours] = NetLimit(rate_kib_s=rate_to_kib(propstr_get(parse_propstr(str(conf[key])), "rate")))
    disks = {}
    for ours, key in disk_map(conf).items():
        items = parse_propstr(str(conf[key]))
        disks[ours] = DiskLimit(total_iops=_int(propstr_get(items, "iops"), 0),
                                total_bytes_sec=mbps_to_bytes(propstr_get(items, "mbps")))
    cpulimit = conf.get("cpulimit")
    return Resources(
        vcpus=online_vcpus(conf),
        memory_mib=memory_now_mib(conf),
        cpu_limit=float(cpulimit) if cpulimit not in (None, "") else 0.0,
        net=nets,
        disk_io=disks,
        gpu=[gpu_of(conf[k]) for k in hostpci_keys(conf)],
    )


def split_pending(current, pending_items):
    """From ``GET config?current=1`` and ``GET pending`` build the next-start config and ``{key: pending value}``
    (``None`` for a pending delete)."""
    nxt = dict(current)
    pending = {}
    for item in pending_items or []:
        key = item.get("key")
        if not key:
            continue
        if item.get("delete"):
            nxt.pop(key, None)
            pending[key] = None
        elif "pending" in item:
            nxt[key] = item["pending"]
            pending[key] = item["pending"]
    return nxt, pending


def power_state(status, conf):
    """``status/current`` + config -> one of POWER_STATES. A hibernated VM is stopped with a ``vmstate``
    (qemu-server ``vm_suspend`` with ``todisk``, lock ``suspended``)."""
    if status.get("status") == "running":
        return STATE_PAUSED if status.get("qmpstatus") in ("paused", "suspended") else STATE_RUNNING
    if conf.get("vmstate") or conf.get("lock") == "suspended":
        return STATE_SAVED
    return STATE_SHUTOFF


def summary_of_resource(item):
    """One ``/cluster/resources`` entry of a managed VM -> the summary dict of ``DesktopBackend.summaries``, or None
    for a VM that is not ours. The listing has no description, so the user is the one in the user tag (PVE's tag
    alphabet, see sanitise_tag); it has no qmpstatus, so a paused VM shows as running; ``maxcpu`` is the VM's
    online vCPUs and ``maxmem`` its defined (full) memory; the balloon target and the vCPU maximum are not in it."""
    tags = parse_tags(item.get("tags"))
    if item.get("template") or MANAGED_TAG not in tags:
        return None
    users = [t[len(USER_TAG_PREFIX):] for t in tags if t.startswith(USER_TAG_PREFIX)]
    if item.get("lock") == "suspended":
        state = STATE_SAVED
    else:
        state = STATE_RUNNING if item.get("status") == "running" else STATE_SHUTOFF
    return {"name": item.get("name") or str(item.get("vmid")), "user": users[0] if users else None,
            "state": state, "node": item.get("node"), "backend": BACKEND, "backend_id": str(item.get("vmid")),
            "vcpus": _int(item.get("maxcpu"), 0), "memory_mib": None, "max_vcpus": None,
            "max_memory_mib": _int(item.get("maxmem"), 0) // MIB, "lock": item.get("lock")}


def snapshots_of(items):
    snaps = []
    for item in items or []:
        if item.get("name") == "current":
            continue
        created = None
        if item.get("snaptime") is not None:
            created = datetime.datetime.fromtimestamp(int(item["snaptime"]), datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        snaps.append(Snapshot(name=item["name"], created=created, with_memory=_bool(item.get("vmstate", 0)),
                              description=item.get("description") or ""))
    return sorted(snaps, key=lambda s: (s.created or "", s.name))


def disks_of(conf):
    out = []
    for ours, key in disk_map(conf).items():
        items = parse_propstr(str(conf[key]))
        volid = propstr_get(items, None, propstr_get(items, "file", propstr_get(items, "volume", "")))
        out.append(DiskInfo(key=ours, target=key, source=volid, format=propstr_get(items, "format", "") or "",
                            backing=backing_of(volid)))
    return out


def facts_of(name, vmid, node, status, current, pending_items, snapshots=()):
    """Build ``DesktopFacts`` from the PVE answers (pure)."""
    nxt, pending = split_pending(current, pending_items)
    state = power_state(status, current)
    active = state in (STATE_RUNNING, STATE_PAUSED)
    live_conf = current if active else nxt
    meta = parse_meta(current.get("description"))
    tags = parse_tags(current.get("tags"))
    user = meta.get("user")
    if user is None:
        user = next((t[len(USER_TAG_PREFIX):] for t in tags if t.startswith(USER_TAG_PREFIX)), None)
    return DesktopFacts(
        name=name, backend=BACKEND, state=state, user=user, backend_id=str(vmid), node=node,
        max_vcpus=max_vcpus(live_conf), max_memory_mib=memory_max_mib(live_conf),
        live=resources_of(live_conf), config=resources_of(nxt), pending=pending,
        has_saved_state=bool(current.get("vmstate")), snapshots=snapshots_of(snapshots),
        disks=disks_of(nxt), interfaces=sorted(net_map(nxt), key=key_sort), tags=tags,
    )


# -- model -> config -----------------------------------------------------------------------------------------------
def check_name(name):
    if not name or not DNS_NAME_RE.match(name):
        raise InvalidInput("Desktop name %r is not valid on Proxmox VE: a VM name must be a DNS name "
                           "(letters, digits, '-' and '.'; not starting or ending with '-')." % (name,))


def check_snapshot_name(snapshot):
    if not snapshot or len(snapshot) > 40 or not CONFIGID_RE.match(snapshot) or snapshot == "current":
        raise InvalidInput("Snapshot name %r is not valid on Proxmox VE: it must start with a letter, contain only "
                           "letters, digits, '_' and '-', be 2 to 40 characters long and not be 'current'."
                           % (snapshot,))


def template_vmid(source):
    try:
        vmid = int(str(source).strip())
    except (TypeError, ValueError):
        vmid = 0
    if not 100 <= vmid <= 999999999:
        raise InvalidInput("source=%r is not a Proxmox VE template VM ID (an integer from 100)." % (source,))
    return vmid


def shadow_config(spec, clone_conf, created_at):
    """The config parameters that turn a fresh linked clone into a shadow: defined at full size, running at shadow
    size, hot-plug ready, tagged and described (``POST /nodes/{node}/qemu/{vmid}/config``)."""
    if not 1 <= spec.shadow_vcpus <= spec.max_vcpus:
        raise InvalidInput("shadow_vcpus=%s must be between 1 and max_vcpus=%s." % (spec.shadow_vcpus, spec.max_vcpus))
    if not 16 <= spec.shadow_memory_mib <= spec.max_memory_mib:
        raise InvalidInput("shadow_memory_mib=%s must be between 16 and max_memory_mib=%s."
                           % (spec.shadow_memory_mib, spec.max_memory_mib))
    meta = {"user": spec.user, "template": str(spec.source), "created": created_at,
            "max_vcpus": spec.max_vcpus, "max_memory_mib": spec.max_memory_mib}
    params = {
        "sockets": 1,
        "cores": spec.max_vcpus,
        "vcpus": spec.shadow_vcpus,
        "memory": str(spec.max_memory_mib),
        "balloon": spec.shadow_memory_mib,
        # shares=0: no automatic ballooning, so the balloon target we set is the guest's size (qemu-server only
        # sends a manual balloon target when shares is 0; otherwise pvestatd moves it between balloon and memory).
        "shares": 0,
        "numa": 1,
        "hotplug": SHADOW_HOTPLUG,
        "tags": shadow_tags(spec.user, clone_conf.get("tags", "")),
        "description": format_description(meta),
    }
    if spec.network:
        nets = net_keys(clone_conf)
        if nets:
            params[nets[0]] = format_propstr(propstr_set(parse_propstr(str(clone_conf[nets[0]])), "bridge",
                                                         spec.network))
        else:
            params["net0"] = "virtio,bridge=%s" % spec.network
    return params


def change_params(conf, changes):
    """``ResourceChange`` list -> (config parameters, keys to delete) for one ``POST .../config``; ``conf`` is the
    next-start config (so pending changes to the same device are kept). Also returns which PVE keys each change
    touches, to read back what became live and what stayed pending."""
    params, delete, touched = {}, [], []
    disks, nets = disk_map(conf), net_map(conf)
    for change in changes:
        keys = []
        if change.field == "vcpus":
            params["vcpus"] = int(change.after)
            keys = ["vcpus"]
        elif change.field == "memory_mib":
            key = "balloon" if ballooning(conf) else "memory"
            params[key] = int(change.after) if key == "balloon" else str(int(change.after))
            keys = [key]
        elif change.field == "cpu_limit":
            params["cpulimit"] = format_number(float(change.after or 0))
            keys = ["cpulimit"]
        elif change.field == "net":
            key = nets.get(change.key)
            if key is None:
                raise InvalidInput("The desktop has no network interface %s." % change.key)
            rate = int((change.after or {}).get("rate_kib_s") or 0)
            items = propstr_set(parse_propstr(str(conf[key])), "rate", kib_to_rate(rate) if rate else None)
            params[key] = format_propstr(items)
            keys = [key]
        elif change.field == "disk_io":
            key = disks.get(change.key)
            if key is None:
                raise InvalidInput("The desktop has no disk %s." % change.key)
            after = change.after or {}
            items = parse_propstr(str(conf[key]))
            iops, bps = int(after.get("total_iops") or 0), int(after.get("total_bytes_sec") or 0)
            items = propstr_set(items, "iops", str(iops) if iops else None)
            items = propstr_set(items, "mbps", bytes_to_mbps(bps) if bps else None)
            params[key] = format_propstr(items)
            keys = [key]
        elif change.field == "gpu":
            old = hostpci_keys(conf)
            wanted = list(change.after or [])
            for i, gpu in enumerate(wanted):
                params["hostpci%d" % i] = gpu if "=" in gpu else "host=%s" % gpu
                keys.append("hostpci%d" % i)
            for key in old[len(wanted):]:
                delete.append(key)
                keys.append(key)
        else:
            raise InvalidInput("Unknown resource field %r." % change.field)
        touched.append(keys)
    return params, delete, touched


# -- classify ------------------------------------------------------------------------------------------------------
def classify(facts, conf, change):
    """Predict how qemu-server applies ``change`` (``conf`` = the running config) without changing anything."""
    if facts.state == STATE_SAVED:
        raise hibernated_conflict(facts.name)
    if not facts.is_active:
        return APPLIED_CONFIG, "the desktop is not running: the configuration is written, nothing is pending"
    field = change.field
    if field == "vcpus":
        if "cpu" not in hotplug_features(conf):
            return APPLIED_PENDING, "'cpu' is not in the VM's hotplug features: vcpus waits for a restart"
        if int(change.after) > max_vcpus(conf):
            return APPLIED_PENDING, "vcpus above cores x sockets of the running VM waits for a restart"
        return APPLIED_LIVE, "vCPU hot-plug (vcpus <= cores x sockets)"
    if field == "memory_mib":
        if ballooning(conf):
            return APPLIED_LIVE, "balloon target change"
        if "memory" not in hotplug_features(conf) or not _bool(conf.get("numa", 0)):
            return APPLIED_PENDING, "ballooning is off and memory hot-plug needs 'memory' in hotplug and numa=1"
        return APPLIED_LIVE, "memory hot-plug (numa=1, 'memory' in hotplug)"
    if field == "cpu_limit":
        return APPLIED_LIVE, "cpulimit is a cgroup quota, changed live"
    if field == "net":
        return APPLIED_LIVE, "a NIC rate limit is changed live on the tap device"
    if field == "disk_io":
        return APPLIED_LIVE, "disk throttling (mbps/iops) is changed live"
    if field == "gpu":
        return APPLIED_PENDING, "Proxmox VE never hot-plugs hostpci devices: they wait for a restart"
    return APPLIED_PENDING, "unknown field"


def hibernated_conflict(name):
    """Why no resource changes on a hibernated VM: qemu-server refuses every config update while the 'suspended'
    lock is held (libvirt can write a saved desktop's definition: the backend contract's one documented
    difference). Raised by ``classify`` as well as ``apply``, so check mode fails exactly like the real run."""
    return Conflict("Cannot change the resources of %s: it is hibernated and Proxmox VE refuses configuration "
                    "changes while the 'suspended' lock is held. Start it first (or discard the saved state)."
                    % name, desktop=name)


def outcome_modes(active, touched, pending):
    """After applying: the real mode of each change from ``GET pending`` (a key still pending = pending)."""
    modes = []
    for keys in touched:
        if any(k in pending for k in keys):
            modes.append((APPLIED_PENDING, "Proxmox VE kept %s in [PENDING]: applies at the next start"
                          % ", ".join(sorted(k for k in keys if k in pending))))
        elif active:
            modes.append((APPLIED_LIVE, "applied to the running VM"))
        else:
            modes.append((APPLIED_CONFIG, "written to the configuration (the VM is not running)"))
    return modes


def locked_by(message):
    """``'VM 105 is locked (backup)'`` -> ``'backup'``; None when the message is not a lock error."""
    match = LOCKED_RE.search(message or "")
    return match.group(2) if match else None
