#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network_shadow
short_description: Give a desktop its network shadow (secondary NIC, bandwidth reservations, early blocking)
version_added: 0.2.0
description:
  - V(present) gives the desktop a secondary NIC on the shadow network (an isolated libvirt network with its own
    bridge; the desktop's primary interface is never touched), shapes the host side of that NIC (an interface
    rate with guaranteed classes for the reserved destinations, in both directions) and installs the desktop's
    block list on its interfaces.
  - V(absent) removes the block list and the shaping and detaches the secondary NIC; nothing is left behind on the
    host. The shadow network itself stays (other desktops use it).
  - Reservations upgrade in place (only the class rates change), so a plan can apply a minimal rate ahead of a
    predicted surge and the full predicted rate at its window, and release it with an empty O(reservations).
  - Every blocked destination is logged with its reason (the module's log and, per dropped packet, the kernel log
    with prefix C(sd-block)); in check mode the result lists what would be blocked.
  - On libvirt it runs on the hypervisor host (needs root, C(tc), C(nft), C(ip)). The host's kernel is
    probed first; when it lacks what is needed (C(htb), C(u32), C(ingress), C(mirred), C(ifb), nftables bridge
    interval sets) the module fails and names what is missing.
  - On Proxmox VE it runs anywhere the API is reachable. The secondary NIC is the VM's C(net1) (recognised by a
    MAC derived from the desktop name; a C(net1) somebody else added is never taken over) on O(bridge) with
    C(firewall=1) and C(rate) = O(rate_mbit) (PVE counts it in MB/s). Proxmox VE has no per-destination
    shaping, so O(reservations) are checked as on libvirt but not shaped per destination; the result says so
    (C(per_destination) is false in RV(shaping)). Blocking uses the Proxmox VE firewall, with one cluster IP set per reason
    (C(sdnet-<digest>), shared by desktops with the same list) and, per set, a VM rule that drops traffic to it
    and one that drops traffic from it, logged at level C(info). The VM firewall is turned on for that (and off
    again at V(absent) when the module turned it on); the datacenter firewall must already be on. An IP set is
    deleted only when no rule of any guest (VM or container), of the cluster or of a security group references it.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._connection
  - shadowdesk.vdi._attributes.ALL
options:
  name:
    description: Name of the desktop.
    type: str
    required: true
  state:
    description: V(present) sets the network shadow up (at login), V(absent) tears it down (at logout).
    type: str
    choices: [present, absent]
    default: present
  network:
    description: The libvirt network of the secondary NIC; created (isolated, autostart) when missing. Not used
      on Proxmox VE.
    type: str
    default: shadowdesk-shadow
  bridge:
    description:
      - Bridge device of a newly created shadow network (at most 15 characters).
      - On Proxmox VE the existing bridge of the node that C(net1) is attached to (for example C(vmbr9)).
    type: str
    default: sdshadow0
  rate_mbit:
    description: Rate of the secondary NIC in each direction (Mbit/s); reservations are carved out of it.
    type: float
    default: 100
  reservations:
    description: Destinations with guaranteed bandwidth on the secondary NIC (IPv4 prefixes).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the reservation (an application class and destination, for example C(web-office)).
        type: str
        required: true
      destinations:
        description: IPv4 addresses or CIDRs of the destination.
        type: list
        elements: str
        required: true
      rate_mbit:
        description: Guaranteed rate (Mbit/s); the class may borrow up to O(rate_mbit) of the interface.
        type: float
        required: true
  block:
    description: What to block before the desktop reaches it. Omit (or leave empty) for no block list.
    type: dict
    suboptions:
      netsets:
        description: Block lists in FireHOL netset format, read on the hypervisor host.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: Name of the list; blocks from it are logged as C(blocklist:<name>).
            type: str
            required: true
          path:
            description: Path of the netset file on the hypervisor host.
            type: path
            required: true
      destinations:
        description: Destinations blocked one by one (the exemptions do not apply to these).
        type: list
        elements: dict
        default: []
        suboptions:
          cidr:
            description: Address or CIDR (IPv4 or IPv6).
            type: str
            required: true
          reason:
            description: Why it is blocked (for example C(forecast:far off the prediction)); logged with every block.
            type: str
            required: true
      allow:
        description: Addresses or CIDRs never blocked, whatever a list says.
        type: list
        elements: str
        default: []
      exempt:
        description:
          - Ranges the netsets may not block. Omit for private, loopback, link-local, CGNAT, benchmarking
            (198.18.0.0/15) and multicast ranges, which block lists carry as bogons; V([]) exempts nothing.
        type: list
        elements: str
      all_interfaces:
        description:
          - Bind the block list to all the desktop's interfaces (true) or only to the secondary NIC.
          - On Proxmox VE the rules then have no C(iface) and apply to every NIC with C(firewall=1); the
            module never sets C(firewall=1) on another NIC than C(net1), and refuses to turn the VM firewall
            on when another NIC already has C(firewall=1).
        type: bool
        default: true
notes:
  - Bandwidth reservations are IPv4 only; block lists take IPv4 and IPv6.
  - "Proxmox VE: O(state=present) fails with a conflict when the desktop is not running, when its C(net1) is
    not its shadow NIC, when a block list is given but the datacenter firewall is off (nothing would be
    enforced), and when the VM firewall is off while another NIC has C(firewall=1). Each check runs before
    anything changes, in check mode too."
seealso:
  - module: shadowdesk.vdi.desktop_resources
"""

EXAMPLES = r"""
- name: At login, give alice's desktop its network shadow with the FireHOL list
  shadowdesk.vdi.network_shadow:
    name: desk-alice
    rate_mbit: 100
    reservations:
      - name: web-office
        destinations: [52.96.0.0/14]
        rate_mbit: 2          # minimal, ahead of the predicted surge
    block:
      netsets:
        - name: firehol_level1
          path: /etc/shadowdesk/firehol_level1.netset
      allow: [52.97.10.0/24]

- name: At the predicted window, the full rate
  shadowdesk.vdi.network_shadow:
    name: desk-alice
    reservations:
      - name: web-office
        destinations: [52.96.0.0/14]
        rate_mbit: 40
    block:
      netsets:
        - name: firehol_level1
          path: /etc/shadowdesk/firehol_level1.netset

- name: At logout, remove everything
  shadowdesk.vdi.network_shadow:
    name: desk-alice
    state: absent

- name: On Proxmox VE, net1 on vmbr9 at 100 Mbit/s and the FireHOL list in the cluster firewall
  shadowdesk.vdi.network_shadow:
    backend: proxmox
    api_host: pve1.example.org
    api_user: shadowdesk@pve
    api_token_id: automation
    api_token_secret: "{{ vault_pve_token }}"
    name: desk-alice
    bridge: vmbr9
    rate_mbit: 100
    block:
      netsets:
        - name: firehol_level1
          path: /etc/shadowdesk/firehol_level1.netset
"""

RETURN = r"""
nic:
  description:
    - The secondary NIC after the run (C(null) when absent); C(target) is its host device.
    - On Proxmox VE C(key), C(mac), C(bridge), C(rate_mb_s), C(firewall), C(value) (the C(net1) config value) and
      C(pending) (true when Proxmox VE could not hot-plug the change and keeps it for the next start). At
      V(absent) C(null), or C(pending_removal=true) when Proxmox VE could not hot-unplug it (it goes at the next
      start; a warning says so).
  returned: always
  type: dict
  sample: {key: net1, mac: "52:54:00:1a:2b:3c", target: vnet7, network: shadowdesk-shadow}
shaping:
  description:
    - The host-side classes of the secondary NIC (C(null) when none); C(how) is what was (or would be) done.
    - On Proxmox VE C(how) is C(interface_rate), C(per_destination) is false and C(reservations) lists each
      reservation with C(shaped=false) (Proxmox VE has no per-destination shaping; the NIC's rate is the
      interface rate, so no reservation is throttled below its own rate).
  returned: always
  type: dict
  sample: {how: rates, after: {classes: {"1:10": {rate_mbit: 40.0, ceil_mbit: 100.0}}}}
blocked:
  description: The block list per reason after the run (what would be blocked in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{name: r0_v4, reason: "blocklist:firehol_level1", entries: 2883}]
block_table:
  description: The nftables table holding the desktop's block list (family C(bridge)); C(null) on Proxmox VE.
  returned: always
  type: str
  sample: sd_desk_alice_1f4190
rules:
  description: Proxmox VE only, the desktop's firewall rules of the network shadow (as sent to the API).
  returned: when the backend is proxmox
  type: list
  elements: dict
  sample: [{type: out, action: DROP, dest: "+dc/sdnet-0f3a9c1d2e4b5a69", enable: 1, log: info}]
interfaces:
  description: Proxmox VE only, the NICs the block list filters (C(net1), plus those with C(firewall=1) when
    O(block.all_interfaces)).
  returned: when the backend is proxmox
  type: list
  elements: str
  sample: [net1]
ipsets_released:
  description: Proxmox VE only, the cluster IP sets deleted (or that would be) because no rule references them.
  returned: when the backend is proxmox
  type: list
  elements: str
  sample: [sdnet-0f3a9c1d2e4b5a69]
kernel_missing:
  description: Traffic-control and nftables features this host's kernel lacks (informational; empty on Proxmox VE).
  returned: always
  type: list
  elements: str
  sample: ["qdisc:sfq", "action:police"]
steps:
  description: What was done (or would be done).
  returned: always
  type: list
  elements: str
  sample: [create_network, attach_nic, shape, block]
"""

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import blocklist
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.pve_network import NIC_KEY
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import Conflict, DesktopNotFound, InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import build_module, run_with_backend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow import blocking, features, shaping
from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow.runner import HostRunner

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    network=dict(type="str", default="shadowdesk-shadow"),
    bridge=dict(type="str", default="sdshadow0"),
    rate_mbit=dict(type="float", default=100),
    reservations=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        destinations=dict(type="list", elements="str", required=True),
        rate_mbit=dict(type="float", required=True),
    )),
    block=dict(type="dict", options=dict(
        netsets=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            path=dict(type="path", required=True),
        )),
        destinations=dict(type="list", elements="dict", default=[], options=dict(
            cidr=dict(type="str", required=True),
            reason=dict(type="str", required=True),
        )),
        allow=dict(type="list", elements="str", default=[]),
        exempt=dict(type="list", elements="str"),
        all_interfaces=dict(type="bool", default=True),
    )),
)


def block_entries(block):
    """The effective block entries from the module's ``block`` option (files read here, malformed -> InvalidInput)."""
    if not block:
        return []
    sources = []
    for netset in block["netsets"]:
        try:
            with open(netset["path"]) as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput("cannot read the netset %s at %s: %s" % (netset["name"], netset["path"], exc)) from None
        sources.append(("blocklist:%s" % netset["name"], blocklist.parse_netset(text, netset["path"])))
    named = {}
    for dest in block["destinations"]:
        named.setdefault(dest["reason"], []).append(blocklist.parse_network(dest["cidr"], "blocked destination"))
    # named destinations first: their own reason is the one logged
    sources = [(reason, nets, False) for reason, nets in sorted(named.items())] + sources
    exempt = blocklist.DEFAULT_EXEMPT if block["exempt"] is None else block["exempt"]
    return blocklist.block_entries(sources, exempt=exempt, allow=block["allow"])


def reservations(params):
    return [{"name": r["name"], "cidrs": [str(blocklist.parse_network(d, "reserved destination"))
                                          for d in r["destinations"]], "rate_mbit": r["rate_mbit"]}
            for r in params["reservations"]]


def ensure_present(module, backend, runner, found):
    params, name, check = module.params, module.params["name"], module.check_mode
    entries = block_entries(params["block"])
    wanted_classes = reservations(params)
    shaping.desired("check", params["rate_mbit"], wanted_classes)  # bad rates fail before anything changes
    purposes = ["shaping towards the desktop", "shaping what leaves the desktop"] + (["blocking"] if entries else [])
    features.require(found, purposes)
    steps = []
    nic_state = backend.shadow_nic(name)
    if not nic_state["active"]:
        raise Conflict("Desktop %s is not running: the network shadow is set up at login, on a running desktop"
                       % name)
    if backend.ensure_shadow_network(params["network"], params["bridge"], check_mode=check):
        steps.append("create_network")
    nic = nic_state["live"]
    if nic is None or nic_state["config"] is None:
        steps.append("attach_nic")
        if not check:
            nic = backend.attach_shadow_nic(name, params["network"])["live"]
    result = {"nic": nic, "block_table": blocking.table_name(name), "steps": steps}
    if nic is None:  # check mode on a desktop without the NIC yet: everything would be built
        result["shaping"] = {"how": "rebuild", "before": None,
                             "after": shaping.summary_of_wanted(shaping.desired("new", params["rate_mbit"],
                                                                                wanted_classes))}
        want = blocking.desired(name, ["new"], entries) if entries else None
        result["blocked"] = [{"name": s["name"], "reason": s["reason"], "entries": len(s["cidrs"])}
                             for s in (want["sets"] if want else [])]
        steps.extend(["shape"] + (["block"] if entries else []))
        return result
    shaped = shaping.apply(runner, nic["target"], params["rate_mbit"], wanted_classes, check_mode=check)
    if shaped["changed"]:
        steps.append("shape")
    result["shaping"] = shaped
    if entries:
        interfaces = nic_state["targets"] if params["block"]["all_interfaces"] and nic_state["targets"] else []
        interfaces = sorted(set(interfaces) | {nic["target"]})
        blocked = blocking.apply(runner, name, interfaces, entries, check_mode=check)
        if blocked["changed"]:
            steps.append("block")
        result["blocked"] = blocked["sets"]
    else:
        if blocking.remove(runner, name, check_mode=check)["changed"]:
            steps.append("unblock")
        result["blocked"] = []
    for entry in result["blocked"]:
        module.log("network_shadow %s: %s %d destination(s) of %s on %s" % (
            name, "would block" if check else "blocks", entry["entries"], entry["reason"], nic["target"]))
    return result


def ensure_absent(module, backend, runner):
    params, name, check = module.params, module.params["name"], module.check_mode
    steps = []
    nic_state = backend.shadow_nic(name)
    if blocking.remove(runner, name, check_mode=check)["changed"]:
        steps.append("unblock")
    nic = nic_state["live"]
    if nic and nic["target"] and shaping.remove(runner, nic["target"], check_mode=check)["changed"]:
        steps.append("unshape")
    if nic_state["live"] or nic_state["config"]:
        steps.append("detach_nic")
        if not check:
            after = backend.detach_shadow_nic(name, params["network"])
            if after["live"] is not None or after["config"] is not None:
                raise Conflict("Desktop %s did not release its shadow NIC (the guest did not acknowledge the "
                               "unplug); the host-side state is removed, rerun to retry" % name)
    return {"nic": None, "shaping": None, "blocked": [], "block_table": blocking.table_name(name), "steps": steps}


def run_proxmox(module, backend):
    """The network shadow through the Proxmox VE API: net1 + its rate, cluster IP sets and VM rules."""
    params, name, check = module.params, module.params["name"], module.check_mode
    shadow = backend.network_shadow()
    if params["state"] == "present":
        entries = block_entries(params["block"])
        wanted_classes = reservations(params)
        shaping.desired(NIC_KEY, params["rate_mbit"], wanted_classes)  # the same checks as on libvirt
        all_interfaces = params["block"]["all_interfaces"] if params["block"] else True
        result = shadow.present(name, params["bridge"], params["rate_mbit"], entries, all_interfaces, check)
        result["shaping"] = {
            "how": "interface_rate", "rate_mbit": params["rate_mbit"], "rate_mb_s": result["nic"]["rate_mb_s"],
            "per_destination": False,
            "reservations": [dict(r, shaped=False) for r in wanted_classes],
        }
        if result["nic"]["pending"]:
            module.warn("Proxmox VE keeps the change of %s's %s pending until the next start (no network hot-plug)"
                        % (name, NIC_KEY))
        for entry in result["blocked"]:
            module.log("network_shadow %s: %s %d destination(s) of %s (IP set %s)" % (
                name, "would block" if check else "blocks", entry["entries"], entry["reason"], entry["name"]))
    else:
        result = shadow.absent(name, check)
        result["shaping"] = None
        if result["nic"]:
            module.warn("Proxmox VE removes %s's %s at the next start (no network hot-unplug); the firewall part "
                        "is gone" % (name, NIC_KEY))
    diff = {"before": result.pop("before"), "after": result.pop("after")}
    result.update(changed=bool(result["steps"]), block_table=None, kernel_missing=[])
    if module._diff:
        result["diff"] = diff
    return result


def run(module, backend):
    name = module.params["name"]
    if backend.get(name) is None:
        raise DesktopNotFound("Desktop %s does not exist." % name)
    if backend.name == "proxmox":
        return run_proxmox(module, backend)
    runner = HostRunner()
    found = features.probe(runner)
    if module.params["state"] == "present":
        result = ensure_present(module, backend, runner, found)
    else:
        result = ensure_absent(module, backend, runner)
    result["changed"] = bool(result["steps"])
    result["kernel_missing"] = found["missing"]
    if module._diff:
        result["diff"] = {"before": {"steps": []}, "after": {"steps": result["steps"]}}
    return result


def main():
    module = build_module(ARGUMENT_SPEC)
    run_with_backend(module, lambda backend: run(module, backend))


if __name__ == "__main__":
    main()
