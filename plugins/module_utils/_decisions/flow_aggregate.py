# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: flow records in, anonymous hourly traffic aggregates out. Pure (stdlib): flow files on the controller
(``_engine/flows.py``) and the hypervisor's connection table (``traffic_sample``) go through the same code.

Flow records (CSV or JSON, NetFlow/IPFIX field names or the short names ``start, end, src, dst, dst_port, proto,
bytes, packets``) are reduced *while they are read* to rows keyed only by::

    (hour, usage_class, app_class, destination)  ->  bytes, packets, flows, connections

- ``usage_class``: the desktop group the source address belongs to (``usage_classes``: name -> CIDRs). A flow
  whose source is in no group is not a desktop's and is dropped (counted).
- ``app_class``: from ``(proto, dst_port)`` by ``app_classes`` (name -> ["tcp/443", "udp/53", "tcp/8000-8100"]),
  else ``other``.
- ``destination``: a named service (``services``: name -> CIDRs) or the destination's prefix (/24 for IPv4, /48
  for IPv6 by default). Never the full address of a host outside a service.
- ``connections``: mean concurrent flows in the hour (flow-seconds / 3600); bytes/packets are spread over the hours
  a flow spans, in proportion to the overlap.

The source address (the only thing that identifies a desktop) lives only in a per-class in-memory set used to
count distinct desktops: a class (usage, app, destination) seen from fewer than ``k`` desktops in the import is
suppressed entirely. No user name, desktop name or address of a desktop is ever returned. Extra fields of the
input (user names, hostnames, ...) are never read.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = _dt.timezone.utc
DEFAULT_K = 5
DEFAULT_APP_CLASSES = {
    "web": ["tcp/80", "tcp/443", "udp/443"],
    "dns": ["udp/53", "tcp/53"],
    "remote_desktop": ["tcp/3389", "udp/3389", "tcp/5900-5910"],
    "mail": ["tcp/25", "tcp/465", "tcp/587", "tcp/993"],
    "ssh": ["tcp/22"],
    "video": ["udp/3478-3481", "udp/8801-8810"],
}
PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132}
# NetFlow v9 / IPFIX / nfdump / common exporter names for each field we read.
FIELD_ALIASES = {
    "start": ("start", "flowStartMilliseconds", "flowStartSeconds", "flowStartMicroseconds", "first_switched",
              "ts", "time_start"),
    "end": ("end", "flowEndMilliseconds", "flowEndSeconds", "flowEndMicroseconds", "last_switched", "te",
            "time_end"),
    "src": ("src", "sourceIPv4Address", "sourceIPv6Address", "srcaddr", "src_addr", "ipv4_src_addr", "sa"),
    "dst": ("dst", "destinationIPv4Address", "destinationIPv6Address", "dstaddr", "dst_addr", "ipv4_dst_addr",
            "da"),
    "dst_port": ("dst_port", "destinationTransportPort", "dstport", "l4_dst_port", "dp"),
    "proto": ("proto", "protocolIdentifier", "protocol", "pr"),
    "bytes": ("bytes", "octetDeltaCount", "in_bytes", "ibyt", "octets"),
    "packets": ("packets", "packetDeltaCount", "in_pkts", "ipkt", "pkts"),
}
REQUIRED = ("start", "src", "dst", "bytes")
MAX_FLOW_HOURS = 24 * 7


def _networks(mapping, what):
    out = []
    if not isinstance(mapping, dict):
        raise InvalidInput("%s must be a mapping of name to a list of CIDRs" % what)
    for name, cidrs in mapping.items():
        if isinstance(cidrs, str):
            cidrs = [cidrs]
        if not isinstance(cidrs, (list, tuple)):
            raise InvalidInput("%s %r: expected a list of CIDRs" % (what, name))
        for cidr in cidrs:
            try:
                out.append((ipaddress.ip_network(str(cidr), strict=False), str(name)))
            except ValueError:
                raise InvalidInput("%s %r: %r is not a CIDR" % (what, name, cidr)) from None
    # most specific first, so a /32 service inside a /16 service wins
    return sorted(out, key=lambda item: -item[0].prefixlen)


def _port_rules(app_classes):
    rules = []
    if not isinstance(app_classes, dict):
        raise InvalidInput("app_classes must be a mapping of class name to a list like ['tcp/443', 'udp/53']")
    for name, specs in app_classes.items():
        for spec in ([specs] if isinstance(specs, str) else specs):
            try:
                proto, ports = str(spec).lower().split("/", 1)
                low, _dash, high = ports.partition("-")
                proto_num = PROTO_NUMBERS[proto] if proto in PROTO_NUMBERS else int(proto)
                lo, hi = int(low), int(high or low)
                if not (0 <= lo <= hi <= 65535):
                    raise ValueError
            except (ValueError, KeyError):
                raise InvalidInput("app class %r: %r is not 'proto/port' or 'proto/low-high'" % (name, spec)) from None
            rules.append((proto_num, lo, hi, str(name)))
    return rules


class FlowClassifier:
    """The mapping config: usage classes, application classes, services, prefix lengths, k."""

    def __init__(self, usage_classes, app_classes=None, services=None, prefix_v4=24, prefix_v6=48, k=DEFAULT_K):
        self.usage = _networks(usage_classes, "usage class")
        if not self.usage:
            raise InvalidInput("usage_classes is empty: no flow could be attributed to a desktop group")
        self.apps = _port_rules(DEFAULT_APP_CLASSES if app_classes is None else app_classes)
        self.services = _networks(services or {}, "service")
        for value, lo, hi in ((prefix_v4, 8, 32), (prefix_v6, 16, 128), (k, 1, 1000)):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise InvalidInput("prefix_v4 must be 8..32, prefix_v6 16..128 and k 1..1000")
        self.prefix = {4: prefix_v4, 6: prefix_v6}
        self.k = k

    @staticmethod
    def _lookup(table, addr):
        for net, name in table:
            if addr.version == net.version and addr in net:
                return name
        return None

    def usage_class(self, addr):
        return self._lookup(self.usage, addr)

    def app_class(self, proto, port):
        for proto_num, lo, hi, name in self.apps:
            if proto == proto_num and port is not None and lo <= port <= hi:
                return name
        return "other"

    def destination(self, addr):
        service = self._lookup(self.services, addr)
        if service:
            return service
        return str(ipaddress.ip_network("%s/%d" % (addr, self.prefix[addr.version]), strict=False))


def _time(value, field):
    """Epoch seconds/milliseconds or ISO-8601 (with offset) -> aware UTC datetime."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        num = float(value)
    else:
        text = str(value).strip()
        try:
            num = float(text)
        except ValueError:
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            try:
                parsed = _dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError("%s is not a time" % field) from None
            if parsed.tzinfo is None:
                raise ValueError("%s has no UTC offset" % field) from None
            return parsed.astimezone(UTC)
    if num > 1e11:  # milliseconds since the epoch (IPFIX flowStartMilliseconds)
        num /= 1000.0
    return _dt.datetime.fromtimestamp(num, UTC)


def _proto(value):
    text = str(value).strip().lower()
    if text in PROTO_NUMBERS:
        return PROTO_NUMBERS[text]
    return int(text)


def _field(record, name):
    for alias in FIELD_ALIASES[name]:
        if alias in record and record[alias] not in (None, ""):
            return record[alias]
    return None


def aggregate(records, classifier, max_examples=5):
    """Anonymous hourly rows and an import report. Nothing identifying a desktop is in either."""
    buckets = {}
    desktops = {}
    report = {"records": 0, "used": 0, "skipped": {}, "examples": [], "suppressed_classes": 0,
              "suppressed_flows": 0, "k": classifier.k}

    def skip(reason, index):
        report["skipped"][reason] = report["skipped"].get(reason, 0) + 1
        if len(report["examples"]) < max_examples:
            report["examples"].append({"record": index + 1, "reason": reason})

    flows_per_class = {}
    for index, rec in enumerate(records):
        report["records"] += 1
        if not isinstance(rec, dict):
            skip("not a flow object", index)
            continue
        values = {name: _field(rec, name) for name in FIELD_ALIASES}
        absent = [f for f in REQUIRED if values[f] is None]
        if absent:
            skip("missing " + ", ".join(absent), index)
            continue
        try:
            start = _time(values["start"], "start")
            end = _time(values["end"], "end") if values["end"] is not None else start
            src = ipaddress.ip_address(str(values["src"]).strip())
            dst = ipaddress.ip_address(str(values["dst"]).strip())
            nbytes = float(values["bytes"])
            packets = float(values["packets"] or 0)
            proto = _proto(values["proto"]) if values["proto"] is not None else None
            port = int(float(values["dst_port"])) if values["dst_port"] is not None else None
        except (ValueError, TypeError) as exc:
            skip("malformed field (%s)" % str(exc).split(":", maxsplit=1)[0][:60], index)
            continue
        if nbytes < 0 or packets < 0 or end < start or (end - start).total_seconds() > MAX_FLOW_HOURS * 3600:
            skip("impossible values (negative counts or duration)", index)
            continue
        usage = classifier.usage_class(src)
        if usage is None:
            skip("source is not in any usage class", index)
            continue
        key = (usage, classifier.app_class(proto, port), classifier.destination(dst))
        desktops.setdefault(key, set()).add(src.packed)
        flows_per_class[key] = flows_per_class.get(key, 0) + 1
        report["used"] += 1
        duration = max((end - start).total_seconds(), 1.0)
        hour = start.replace(minute=0, second=0, microsecond=0)
        flow_end = start + _dt.timedelta(seconds=duration)
        while hour < flow_end:
            nxt = hour + _dt.timedelta(hours=1)
            overlap = (min(nxt, flow_end) - max(hour, start)).total_seconds()
            share = overlap / duration
            row = buckets.setdefault((hour,) + key, [0.0, 0.0, 0, 0.0])
            row[0] += nbytes * share
            row[1] += packets * share
            row[2] += 1 if hour <= start < nxt else 0
            row[3] += overlap / 3600.0
            hour = nxt
    small = {key for key, seen in desktops.items() if len(seen) < classifier.k}
    report["suppressed_classes"] = len(small)
    report["suppressed_flows"] = sum(flows_per_class[key] for key in small)
    report["classes"] = len(desktops) - len(small)
    desktops.clear()  # the only place source addresses lived
    rows = []
    for (hour, usage, app, dest), (nbytes, packets, flows, conns) in sorted(buckets.items()):
        if (usage, app, dest) in small:
            continue
        rows.append({"hour": hour, "usage_class": usage, "app_class": app, "destination": dest,
                     "bytes": round(nbytes), "packets": round(packets), "flows": flows,
                     "connections": round(conns, 4)})
    return rows, report


# The classifier's options as an argument_spec (doc fragment shadowdesk.vdi._flow_classes): traffic_import on the
# controller and traffic_sample on the hypervisor take the same ones.
FLOW_CLASS_ARGS = dict(
    app_classes=dict(type="dict"),
    services=dict(type="dict"),
    prefix_v4=dict(type="int", default=24),
    prefix_v6=dict(type="int", default=48),
    k=dict(type="int", default=DEFAULT_K),
)


def classifier_from(params):
    """A FlowClassifier from a task's validated arguments (FLOW_CLASS_ARGS and usage_classes)."""
    return FlowClassifier(params["usage_classes"], app_classes=params["app_classes"], services=params["services"],
                          prefix_v4=params["prefix_v4"], prefix_v6=params["prefix_v6"], k=params["k"])
