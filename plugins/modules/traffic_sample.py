#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic_sample
short_description: Sample the desktops' connections on the hypervisor, anonymised before they leave the host
version_added: 0.3.0
description:
  - Reads the hypervisor's connection table (C(/proc/net/nf_conntrack)) and returns what the desktops' connections
    moved since the previous sample as anonymous hourly aggregates per usage class, application class and
    destination, the same rows M(shadowdesk.vdi.traffic_import) makes of a flow export. Give the result to
    M(shadowdesk.vdi.traffic_import) with O(shadowdesk.vdi.traffic_import#module:aggregates).
  - Anonymised on the host, before anything leaves it. A connection's source address only decides its usage class
    (O(usage_classes)); its destination is reduced to a named service (O(services)) or a prefix; a class seen from
    fewer than O(k) desktops in the sample is dropped. Neither the result nor the module's cursor file holds an
    address.
  - "The cursor (O(state_file)): per connection, the counters seen last time, keyed by an HMAC of the connection
    with a random per-host salt. A sample counts only what moved since the previous one, so sampling every few
    minutes never counts a long connection twice; a connection that moved nothing still counts as concurrent."
  - Byte counters need connection accounting (C(net.netfilter.nf_conntrack_acct)); with O(accounting) the module
    turns it on (counters then start with new connections). Without it only connection counts are sampled.
  - Conntrack tracks a network namespace's connections only while some firewall rule uses it (libvirt's NAT
    networks and the network shadow's nftables rules do); an empty table is reported, not an error.
  - Runs on the hypervisor host as root. Sampling is a read; C(changed) is true only when accounting was turned on.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._flow_classes
options:
  usage_classes:
    description: Desktop groups by source network, C(name -> [CIDR, ...]); other connections are not the desktops'.
    type: dict
    required: true
  table:
    description: The connection table to read (the kernel's, or a saved C(conntrack -L -o extended) output).
    type: path
    default: /proc/net/nf_conntrack
  state_file:
    description: The cursor between samples (created with mode 0600; holds no address).
    type: path
    default: /var/lib/shadowdesk/traffic_sample.json
  accounting:
    description: Turn connection accounting on when it is off (C(/proc/sys/net/netfilter/nf_conntrack_acct)).
    type: bool
    default: true
  now:
    description: The time of the sample (ISO-8601 with an offset or C(Z)); default now.
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
    details: Samples and reports the same rows, but neither turns accounting on nor moves the cursor.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
seealso:
  - module: shadowdesk.vdi.traffic_import
  - module: shadowdesk.vdi.network_shadow
"""

EXAMPLES = r"""
- name: Sample the desktops' connections on the hypervisor
  shadowdesk.vdi.traffic_sample:
    usage_classes: {office: [192.168.122.0/24]}
    services: {video-conference: [192.0.2.0/24]}
  become: true
  register: sampled

- name: Store the sample (on the controller)
  shadowdesk.vdi.traffic_import:
    aggregates: "{{ sampled.rows }}"
    source: "{{ sampled.source }}"
  delegate_to: localhost
"""

RETURN = r"""
rows:
  description: Anonymous hourly aggregates (hour, usage class, application class, destination, bytes, packets, flows,
    mean concurrent connections); nothing in them identifies a desktop.
  returned: success
  type: list
  elements: dict
  sample: [{"hour": "2026-12-07T09:00:00Z", "usage_class": "office", "app_class": "video",
            "destination": "video-conference", "bytes": 104857600, "packets": 80000, "flows": 6, "connections": 0.5}]
report:
  description: What was read, used and suppressed, as in M(shadowdesk.vdi.traffic_import), plus C(entries) (table
    lines), C(accounting) (byte counters on) and C(interval_s) (seconds since the previous sample).
  returned: success
  type: dict
  sample: {"entries": 214, "records": 214, "used": 180, "classes": 3, "suppressed_classes": 1, "accounting": true,
           "interval_s": 300.0}
source:
  description: A label of this sample for M(shadowdesk.vdi.traffic_import) (a rerun of the same sample adds nothing).
  returned: success
  type: str
  sample: conntrack:5f3a9c01:2026-12-07T09:05:00Z
sampled_at:
  description: The time of the sample.
  returned: success
  type: str
  sample: "2026-12-07T09:05:00Z"
"""

import datetime
import hashlib
import json
import os
import secrets
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.conntrack import parse_conntrack, sample
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.flow_aggregate import (
    FLOW_CLASS_ARGS, aggregate, classifier_from,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput, ShadowDeskError
from ansible_collections.shadowdesk.vdi.plugins.module_utils._time import iso_z, to_utc

ACCOUNTING = "/proc/sys/net/netfilter/nf_conntrack_acct"

ARGUMENT_SPEC = dict(
    usage_classes=dict(type="dict", required=True),
    table=dict(type="path", default="/proc/net/nf_conntrack"),
    state_file=dict(type="path", default="/var/lib/shadowdesk/traffic_sample.json"),
    accounting=dict(type="bool", default=True),
    now=dict(type="str"),
    **FLOW_CLASS_ARGS
)


def read_table(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InvalidInput("No connection table at %s: load conntrack (modprobe nf_conntrack) or give table the "
                           "output of 'conntrack -L -o extended'." % path) from None


def load_cursor(path):
    """The cursor and the host's salt; a missing or unreadable cursor starts afresh (nothing is counted twice,
    the first sample after it only covers a short interval)."""
    try:
        with open(path, encoding="utf-8") as handle:
            cursor = json.load(handle)
        if isinstance(cursor, dict) and isinstance(cursor.get("salt"), str) and len(cursor["salt"]) >= 16:
            return cursor
    except (OSError, ValueError):
        pass
    return {"salt": secrets.token_hex(16), "sampled_at": None, "connections": {}}


def save_cursor(path, cursor):
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".traffic_sample.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(cursor, out, sort_keys=True)
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except OSError:
        os.unlink(temp)
        raise


def accounting_on(want, check_mode):
    """(on now, changed): turn accounting on when asked and it is off."""
    try:
        with open(ACCOUNTING, encoding="ascii") as handle:
            current = handle.read().strip() == "1"
    except OSError:
        return False, False
    if current or not want:
        return current, False
    if not check_mode:
        with open(ACCOUNTING, "w", encoding="ascii") as handle:
            handle.write("1\n")
    return True, True


def run_sample(params, check_mode):
    classifier = classifier_from(params)
    now = to_utc(params["now"], "now") if params["now"] else datetime.datetime.now(datetime.timezone.utc)
    accounting, changed = accounting_on(params["accounting"], check_mode)
    entries = parse_conntrack(read_table(params["table"]))
    cursor = load_cursor(params["state_file"])
    records, moved = sample(entries, cursor, now, cursor["salt"])
    rows, report = aggregate(records, classifier)
    del records  # the only place the addresses were
    previous = cursor.get("sampled_at")
    counted = any(e["counted"] for e in entries) if entries else accounting
    report.update(entries=len(entries), accounting=counted,
                  interval_s=(now - to_utc(previous)).total_seconds() if previous else None)
    if not check_mode:
        save_cursor(params["state_file"], dict(moved, salt=cursor["salt"]))
    host_tag = hashlib.sha256(cursor["salt"].encode("ascii")).hexdigest()[:8]
    for row in rows:
        row["hour"] = iso_z(row["hour"])
    return dict(changed=changed, rows=rows, report=report, sampled_at=iso_z(now),
                source="conntrack:%s:%s" % (host_tag, iso_z(now)))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run_sample(module.params, module.check_mode)
    except ShadowDeskError as exc:
        module.fail_json(msg=str(exc), error_type=type(exc).__name__)
    except OSError as exc:
        module.fail_json(msg="Cannot use %s: %s" % (exc.filename, exc.strerror or exc), error_type="OSError")
    if not result["report"]["accounting"] and result["report"]["entries"]:
        module.warn("Connection accounting is off (net.netfilter.nf_conntrack_acct): only connection counts were "
                    "sampled, no bytes.")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
