"""The Proxmox VE firewall endpoints of the stand-in: cluster IP sets, VM rules, VM and cluster options.

Semantics follow pve-firewall (``src/PVE/API2/Firewall/{IPSet,Rules,VM,Cluster}.pm`` and ``src/PVE/Firewall.pm``):

* IP set names match ``[A-Za-z][A-Za-z0-9\\-\\_]+`` (schema); creating an existing set is a 400 on ``name``;
  a set that does not exist is a plain ``die`` (HTTP 500 "no such IPSet 'x'").
* Entries are normalised like the config parser (host bits cleared, ``/32`` and ``/128`` dropped), a duplicate
  or a zero prefix is a 400 on ``cidr``; a new entry goes to the *front* of the list. Reading or updating an
  entry compares the path's cidr as given (no normalisation); deleting an entry that is not there succeeds.
* Deleting a set with entries needs ``force``. PVE does *not* check whether rules still reference the set
  (clients must), and neither does the stand-in.
* A new rule always goes to position 0 (``pos`` is accepted and ignored on POST), ``enable`` defaults to 0,
  ``+name`` / ``+dc/name`` / ``+guest/name`` must name an existing set (400 "no such ipset"), ``iface`` of a VM
  rule must be ``net<n>``, only ``in``/``out``/``group`` rules exist on a VM.
* Every list carries the sha1 digest of its content; a write with a stale ``digest`` fails (HTTP 500
  "detected modified configuration ...").
* A VM's firewall configuration (options, rules) is kept by vmid, whether or not the VM exists; destroying the
  VM removes it (qemu-server's ``destroy_vm`` calls ``remove_vmfw_conf``).

The named formats the firewall parameters use (``IPorCIDRorAlias``, ``pve-fw-addr-spec``, ports, protocols, ICMP
types) are registered into ``pve_schema`` here, so the generic validator checks them before a handler runs.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
import sys
from typing import Any, Callable

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pve_schema as schema_mod  # type: ignore[no-redef]
    from pve_errors import fail, param_error  # type: ignore[no-redef]
else:
    from . import pve_schema as schema_mod
    from .pve_errors import fail, param_error

FormatError = schema_mod.FormatError

NAME_PATTERN = r"[A-Za-z][A-Za-z0-9\-\_]+"
MAX_SET_NAME = 64
VM_RULE_TYPES = ("in", "out", "group")
RULE_KEYS = ("type", "action", "macro", "iface", "source", "dest", "proto", "enable", "log", "sport", "dport",
             "comment", "icmp-type")
MODIFIED = "detected modified configuration - file changed by other user? Try again."
ICMP_TYPES = frozenset((
    "any echo-reply destination-unreachable network-unreachable host-unreachable protocol-unreachable "
    "port-unreachable fragmentation-needed source-route-failed network-unknown host-unknown network-prohibited "
    "host-prohibited communication-prohibited host-precedence-violation precedence-cutoff source-quench redirect "
    "network-redirect host-redirect echo-request router-advertisement router-solicitation time-exceeded "
    "ttl-zero-during-transit ttl-zero-during-reassembly parameter-problem ip-header-bad required-option-missing "
    "timestamp-request timestamp-reply address-mask-request address-mask-reply").split())
ICMPV6_TYPES = frozenset((
    "destination-unreachable no-route communication-prohibited beyond-scope address-unreachable port-unreachable "
    "failed-policy reject-route packet-too-big time-exceeded ttl-zero-during-transit ttl-zero-during-reassembly "
    "parameter-problem bad-header unknown-header-type unknown-option echo-request echo-reply router-solicitation "
    "router-advertisement neighbor-solicitation neighbour-solicitation neighbor-advertisement "
    "neighbour-advertisement redirect").split())
PROTOCOLS_WITH_PORTS = {"udp", "17", "udplite", "136", "tcp", "6", "dccp", "33", "sctp", "132"}
_ALIAS = re.compile(r"^(dc/|guest/)?" + NAME_PATTERN + "$")
_IPSET_REF = re.compile(r"^\+(guest/|dc/|sdn/)?(" + NAME_PATTERN + ")$")


# ---------------------------------------------------------------------------------------------- formats
def _ip_or_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """pve_verify_ip_or_cidr: an address with an optional prefix length; host bits are cleared, not refused."""
    if not re.fullmatch(r"[0-9A-Fa-f:.]+(/\d+)?", text):
        raise FormatError("value does not look like a valid IP address or CIDR network")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise FormatError(str(exc)) from None


def _verify_ip_or_cidr_or_alias(text: str) -> None:
    if _ALIAS.match(text):
        return
    _ip_or_cidr(text)


def _address_version(text: str) -> int | None:
    """parse_address_list: an IP set reference, an alias or a list of addresses/CIDRs/ranges; the IP version."""
    if text.startswith("+") and re.fullmatch(r"\+\S+", text):
        if len(text) > MAX_SET_NAME + 1:
            raise FormatError("ipset name too long")
        return None
    if _ALIAS.match(text):
        return None
    elements = text.split(",")
    if any(not e for e in elements):
        raise FormatError("extraneous commas in list")
    version, ranged = None, False
    for elem in elements:
        try:
            if "-" in elem:
                ranged = True
                first, last = (ipaddress.ip_address(x) for x in elem.split("-", 1))
                if first.version != last.version or first > last:
                    raise ValueError(elem)
                new = first.version
            else:
                new = ipaddress.ip_network(elem, strict=True).version
        except ValueError:
            raise FormatError("invalid IP address: %s" % elem) from None
        if version and new != version:
            raise FormatError("detected mixed ipv4/ipv6 addresses in address list '%s'" % text)
        version = new
    if ranged and len(elements) > 1:
        raise FormatError("you can't use a range in a list")
    return version


def _ports(text: str, dport: bool) -> None:
    """parse_port_name_number_or_range: numbers, ``a:b`` ranges, service names (ICMP type names for dport)."""
    elements = text.split(",")
    if any(not e for e in elements):
        raise FormatError("extraneous commas in list")
    count, icmp = 0, False
    for item in elements:
        match = re.fullmatch(r"(\d+):(\d+)", item)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            for port in (low, high):
                if port > 65535:
                    raise FormatError("invalid port '%d'" % port)
            if low > high:
                raise FormatError("backwards range '%d:%d' not allowed, did you mean '%d:%d'?" % (low, high, high, low))
            count += 2
        elif item.isdigit():
            if int(item) > 65535:
                raise FormatError("invalid port '%s'" % item)
            count += 1
        elif dport and (item in ICMP_TYPES or item in ICMPV6_TYPES):
            icmp = True
        else:
            try:
                socket.getservbyname(item)
            except OSError:
                raise FormatError("invalid port '%s'" % item) from None
    if icmp and count:
        raise FormatError("ICMP ports not allowed in port range")
    if count > 15:
        raise FormatError("too many entries in port list (> 15 numbers)")


def _protocol(text: str) -> None:
    if text.isdigit() and int(text) <= 255:
        return
    try:
        socket.getprotobyname(text)
    except OSError:
        raise FormatError("unknown protocol '%s'" % text) from None


def _icmp_type(text: str) -> None:
    if text not in ICMP_TYPES and text not in ICMPV6_TYPES and not re.fullmatch(r"\d+(/\d+)?", text):
        raise FormatError("invalid icmp-type value '%s'" % text)


def _register_formats() -> None:
    formats: dict[str, Callable[[str], Any]] = {
        "IPorCIDRorAlias": _verify_ip_or_cidr_or_alias,
        "pve-fw-addr-spec": _address_version,
        "pve-fw-dport-spec": lambda text: _ports(text, dport=True),
        "pve-fw-sport-spec": lambda text: _ports(text, dport=False),
        "pve-fw-protocol-spec": _protocol,
        "pve-fw-icmp-type-spec": _icmp_type,
    }
    for name, verify in formats.items():
        schema_mod.NAMED_FORMATS.setdefault(name, verify)


_register_formats()


# ---------------------------------------------------------------------------------------------- state
def list_digest(items: list[dict]) -> str:
    """copy_list_with_digest: sha1 over ``key:value\\n`` of every entry's keys in order."""
    sha = hashlib.sha1()
    for item in items:
        for key in sorted(item):
            sha.update(("%s:%s\n" % (key, item[key])).encode())
    return sha.hexdigest()


def object_digest(obj: dict) -> str:
    sha = hashlib.sha1()
    for key in sorted(obj):
        sha.update(("%s:%s\n" % (key, obj[key])).encode())
    return sha.hexdigest()


def with_digest(items: list[dict]) -> list[dict]:
    digest = list_digest(items)
    return [dict(item, digest=digest) for item in items]


def normalise_cidr(text: str) -> str:
    """clean_cidr + parse_ip_or_cidr: host bits cleared, ``/32`` (IPv4) and ``/128`` (IPv6) dropped."""
    if "/" not in text:
        return str(ipaddress.ip_address(text))
    net = ipaddress.ip_network(text, strict=False)
    full = 32 if net.version == 4 else 128
    return str(net.network_address) if net.prefixlen == full else str(net)


class FirewallState:
    """The cluster firewall config (options, IP sets) and every VM's firewall config (options, rules)."""

    def __init__(self) -> None:
        self.cluster_options: dict[str, Any] = {}
        self.ipsets: dict[str, list[dict]] = {}
        self.ipset_comments: dict[str, str] = {}
        self.vms: dict[int, dict] = {}

    def vm(self, vmid: int) -> dict:
        return self.vms.setdefault(int(vmid), {"options": {}, "rules": []})

    def ipset(self, name: str) -> list[dict]:
        if name not in self.ipsets:
            raise fail("no such IPSet '%s'" % name)
        return self.ipsets[name]

    def remove_vm(self, vmid: int) -> None:
        self.vms.pop(int(vmid), None)

    def public(self) -> dict:
        """A deep copy for before/after comparisons (vmids with an empty config are left out)."""
        vms = {vmid: {"options": dict(c["options"]), "rules": [dict(r) for r in c["rules"]]}
               for vmid, c in sorted(self.vms.items()) if c["options"] or c["rules"]}
        return {"options": dict(self.cluster_options),
                "ipsets": {n: [dict(e) for e in entries] for n, entries in sorted(self.ipsets.items())},
                "ipset_comments": dict(self.ipset_comments), "vms": vms}


def _assert_digest(current: str, given: str | None) -> None:
    if given and given != current:
        raise fail(MODIFIED)


# ---------------------------------------------------------------------------------------------- handlers
ROUTES: dict[tuple[str, str], Callable[[Any, Any], Any]] = {}
IPSETS = "/cluster/firewall/ipset"
VMFW = "/nodes/{node}/qemu/{vmid}/firewall"


def route(method: str, template: str):
    def deco(fn):
        ROUTES[(method, template)] = fn
        return fn
    return deco


def _ipset_list(fw: FirewallState) -> list[dict]:
    return [dict({"name": name}, **({"comment": fw.ipset_comments[name]} if fw.ipset_comments.get(name) else {}))
            for name in sorted(fw.ipsets)]


@route("GET", IPSETS)
def _ipset_index(pve, ctx):
    return with_digest(_ipset_list(pve.firewall))


@route("POST", IPSETS)
def _ipset_create(pve, ctx):
    fw, args = pve.firewall, ctx.args
    name, rename = args["name"], args.get("rename")
    if rename:
        _assert_digest(list_digest(_ipset_list(fw)), args.get("digest"))
        if rename not in fw.ipsets:
            raise param_error("name", "IPSet '%s' does not exist" % rename)
        if name in fw.ipsets and name != rename:
            raise param_error("name", "IPSet '%s' does already exist" % name)
        fw.ipsets[name] = fw.ipsets.pop(rename)
        if rename in fw.ipset_comments:
            fw.ipset_comments[name] = fw.ipset_comments.pop(rename)
    else:
        if name in fw.ipsets:
            raise param_error("name", "IPSet '%s' already exists" % name)
        fw.ipsets[name] = []
    if args.get("comment") is not None:
        fw.ipset_comments[name] = args["comment"]
    return None


@route("GET", IPSETS + "/{name}")
def _ipset_entries(pve, ctx):
    return with_digest(pve.firewall.ipset(ctx.args["name"]))


@route("DELETE", IPSETS + "/{name}")
def _ipset_delete(pve, ctx):
    fw, name = pve.firewall, ctx.args["name"]
    if fw.ipset(name) and not ctx.args.get("force"):
        raise fail("IPSet '%s' is not empty" % name)
    del fw.ipsets[name]
    fw.ipset_comments.pop(name, None)
    return None


@route("POST", IPSETS + "/{name}")
def _ipset_add(pve, ctx):
    fw, args = pve.firewall, ctx.args
    entries = fw.ipset(args["name"])
    cidr = args["cidr"]
    if _ALIAS.match(cidr):
        raise fail("no such alias '%s'" % cidr.split("/")[-1])   # aliases are not modelled: none exists
    cidr = normalise_cidr(cidr)
    if any(e["cidr"] == cidr for e in entries):
        raise param_error("cidr", "address '%s' already exists" % cidr)
    if re.search(r"/0+$", cidr):
        raise param_error("cidr", "a zero prefix is not allowed in ipset entries")
    entry: dict[str, Any] = {"cidr": cidr}
    if args.get("nomatch"):
        entry["nomatch"] = 1
    if args.get("comment"):
        entry["comment"] = args["comment"]
    entries.insert(0, entry)
    return None


def _entry(pve, ctx) -> dict:
    for entry in pve.firewall.ipset(ctx.args["name"]):
        if entry["cidr"] == ctx.args["cidr"]:
            return entry
    raise param_error("cidr", "no such IP/Network")


@route("GET", IPSETS + "/{name}/{cidr}")
def _ipset_entry(pve, ctx):
    entry = _entry(pve, ctx)
    return dict(entry, digest=list_digest(pve.firewall.ipset(ctx.args["name"])))


@route("PUT", IPSETS + "/{name}/{cidr}")
def _ipset_entry_update(pve, ctx):
    entries = pve.firewall.ipset(ctx.args["name"])
    _assert_digest(list_digest(entries), ctx.args.get("digest"))
    entry = _entry(pve, ctx)
    # update_ip assigns both, so an omitted one is cleared
    for key in ("nomatch", "comment"):
        value = ctx.args.get(key)
        if value in (None, "", 0):
            entry.pop(key, None)
        else:
            entry[key] = value
    return None


@route("DELETE", IPSETS + "/{name}/{cidr}")
def _ipset_entry_delete(pve, ctx):
    fw, name = pve.firewall, ctx.args["name"]
    entries = fw.ipset(name)
    _assert_digest(list_digest(entries), ctx.args.get("digest"))
    fw.ipsets[name] = [e for e in entries if e["cidr"] != ctx.args["cidr"]]
    return None


@route("GET", "/cluster/firewall/options")
def _cluster_options(pve, ctx):
    options = pve.firewall.cluster_options
    return dict(options, digest=object_digest(options))


@route("PUT", "/cluster/firewall/options")
def _cluster_options_set(pve, ctx):
    return _set_options(pve.firewall.cluster_options, ctx.args, "/cluster/firewall/options", pve)


@route("GET", VMFW + "/options")
def _vm_options(pve, ctx):
    options = pve.firewall.vm(ctx.args["vmid"])["options"]
    return dict(options, digest=object_digest(options))


@route("PUT", VMFW + "/options")
def _vm_options_set(pve, ctx):
    return _set_options(pve.firewall.vm(ctx.args["vmid"])["options"], ctx.args, VMFW + "/options", pve)


def _set_options(options: dict, args: dict, template: str, pve) -> None:
    _assert_digest(object_digest(options), args.get("digest"))
    settable = set(pve.schema.method_info(template, "PUT")["parameters"]["properties"]) - {
        "node", "vmid", "delete", "digest"}
    for key in schema_mod.split_list(args.get("delete") or ""):
        if key not in settable:
            raise param_error("delete", "no such option '%s'" % key)
        options.pop(key, None)
    for key in settable:
        if args.get(key) is not None:
            value = args[key]
            options[key] = (1 if value else 0) if key == "enable" else value
    return None


def _verify_rule(pve, rule: dict) -> None:
    """verify_rule for a VM: the checks beyond the schema (first error wins, like raise_param_exc)."""
    rtype, action = rule.get("type"), rule.get("action")
    if rtype not in VM_RULE_TYPES:
        raise param_error("type", "invalid rule type '%s' for rule_env 'vm'" % rtype)
    if rtype in ("in", "out") and action not in ("ACCEPT", "DROP", "REJECT"):
        raise param_error("action", "unknown action '%s'" % action)
    if rule.get("iface") and not re.fullmatch(r"net(\d+)", rule["iface"]):
        raise param_error("iface", "value does not match the regex pattern 'net\\d+'")
    if rule.get("macro"):
        raise param_error("macro", "unknown macro '%s'" % rule["macro"])   # macros are not modelled
    proto = rule.get("proto")
    for key in ("dport", "sport"):
        if rule.get(key):
            if not proto:
                raise param_error("proto", "missing property - '%s' requires this property" % key)
            if proto not in PROTOCOLS_WITH_PORTS and not (key == "dport" and proto in ("icmp", "icmpv6", "ipv6-icmp")):
                raise param_error(key, "protocol '%s' does not support ports" % proto)
    version = None
    for key in ("source", "dest"):
        value = rule.get(key)
        if not value:
            continue
        if value.startswith("+"):
            match = _IPSET_REF.match(value)
            if not match:
                raise param_error(key, "invalid ipset name '%s'" % value)
            if match.group(2) not in pve.firewall.ipsets:
                raise param_error(key, "no such ipset '%s'" % match.group(2))
        elif _ALIAS.match(value):
            raise param_error(key, "no such alias '%s'" % value)   # aliases are not modelled: none exists
        else:
            new = _address_version(value)
            if version and new and new != version:
                raise fail("detected mixed ipv4/ipv6 addresses in rule")
            version = new or version
    if version:
        rule["ipversion"] = version
    else:
        rule.pop("ipversion", None)


def _copy_rule_data(rule: dict, args: dict) -> None:
    for key in RULE_KEYS:
        value = args.get(key)
        if value is None:
            continue
        if value in ("", "-"):
            rule.pop(key, None)
        else:
            rule[key] = value


@route("GET", VMFW + "/rules")
def _rules(pve, ctx):
    rules = pve.firewall.vm(ctx.args["vmid"])["rules"]
    return [dict(rule, pos=pos) for pos, rule in enumerate(with_digest(rules))]


@route("GET", VMFW + "/rules/{pos}")
def _rule(pve, ctx):
    rules = pve.firewall.vm(ctx.args["vmid"])["rules"]
    pos = ctx.args["pos"]
    if pos >= len(rules):
        raise fail("no rule at position %d" % pos)
    return dict(with_digest(rules)[pos], pos=pos)


@route("POST", VMFW + "/rules")
def _rule_create(pve, ctx):
    config = pve.firewall.vm(ctx.args["vmid"])
    rule: dict[str, Any] = {}
    _copy_rule_data(rule, ctx.args)
    _verify_rule(pve, rule)
    rule.setdefault("enable", 0)
    config["rules"].insert(0, rule)   # create_rule unshifts: 'pos' is not honoured
    return None


@route("PUT", VMFW + "/rules/{pos}")
def _rule_update(pve, ctx):
    config, args = pve.firewall.vm(ctx.args["vmid"]), ctx.args
    rules = config["rules"]
    _assert_digest(list_digest(rules), args.get("digest"))
    pos = args["pos"]
    if pos >= len(rules):
        raise fail("no rule at position %d" % pos)
    moveto = args.get("moveto")
    if moveto is not None and moveto != pos:
        rule = rules.pop(pos)
        rules.insert(moveto if moveto < pos else min(moveto - 1, len(rules)), rule)
        return None
    rule = dict(rules[pos])
    _copy_rule_data(rule, args)
    for key in schema_mod.split_list(args.get("delete") or ""):
        if key not in RULE_KEYS and key not in ("pos", "digest"):
            raise param_error("delete", "no such property ('%s')" % key)
        if key in ("type", "action"):
            raise param_error("delete", "unable to delete required property '%s'" % key)
        rule.pop(key, None)
    _verify_rule(pve, rule)
    rules[pos] = rule
    return None


@route("DELETE", VMFW + "/rules/{pos}")
def _rule_delete(pve, ctx):
    rules = pve.firewall.vm(ctx.args["vmid"])["rules"]
    _assert_digest(list_digest(rules), ctx.args.get("digest"))
    pos = ctx.args["pos"]
    if pos >= len(rules):
        raise fail("no rule at position %d" % pos)
    del rules[pos]
    return None
