#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation only: the work is done on the controller by plugins/action/traffic_import.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic_import
short_description: Import the desktops' network flows into the history store, anonymised on the way in
version_added: 0.3.0
description:
  - Reads a flow export on the controller (NetFlow/IPFIX field names, or the short names C(start), C(end), C(src),
    C(dst), C(dst_port), C(proto), C(bytes), C(packets); CSV or JSON, gzip allowed) and stores hourly aggregates
    per usage class, application class and destination, the input of the network shadow's traffic forecasts.
  - "Anonymised while it is read: a flow's source address only decides its usage class (O(usage_classes)) and is
    counted in memory to apply O(k); the store gets no user, no desktop name and no desktop address, only
    C((hour, usage class, application class, destination))."
  - A destination is a named service (O(services)) or the destination's prefix (O(prefix_v4), O(prefix_v6)), never
    the full address of a host outside a service.
  - A class seen from fewer than O(k) desktops in the export is suppressed entirely and counted in the report.
  - Imports are idempotent. The export's digest identifies it, so importing the same file again adds nothing and
    reports C(changed=false); different exports of the same hours add up.
  - Malformed records (missing fields, bad addresses, negative counts) are counted per reason with examples and never
    fail the import; a file that is not CSV or JSON flow records fails with a clear message and stores nothing.
  - Runs on the controller; nothing is sent to the managed host.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._flow_classes
  - shadowdesk.vdi._data_dir
  - shadowdesk.vdi._history_store
options:
  src:
    description:
      - The flow export on the controller (relative paths are searched like other C(files/) lookups).
      - Give O(src) or O(aggregates).
    type: path
  aggregates:
    description:
      - Rows M(shadowdesk.vdi.traffic_sample) made on a hypervisor (anonymised there), stored as they are. A row with
        any field other than C(hour), C(usage_class), C(app_class), C(destination), C(bytes), C(packets), C(flows)
        and C(connections) is refused.
    type: list
    elements: dict
  source:
    description: With O(aggregates), the sample's label (its RV(shadowdesk.vdi.traffic_sample#module:source)).
    type: str
  format:
    description: V(csv) or V(json) (a list of objects, or one object per line). Default is to tell from the content.
    type: str
    choices: [csv, json]
  usage_classes:
    description:
      - Desktop groups by source network, C(name -> [CIDR, ...]). A flow whose source is in no group is not a
        desktop's and is skipped (counted). Required with O(src).
    type: dict
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
    details: Reads, anonymises and stores in a transaction that is rolled back; the report is what a real run does.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
seealso:
  - module: shadowdesk.vdi.network_shadow
  - module: shadowdesk.vdi.history_import
"""

EXAMPLES = r"""
- name: Store a hypervisor's connection sample
  shadowdesk.vdi.traffic_import:
    aggregates: "{{ sampled.rows }}"
    source: "{{ sampled.source }}"

- name: Import last night's flow export of the desktop subnets
  shadowdesk.vdi.traffic_import:
    src: /var/tmp/flows-2026-12-06.csv.gz
    usage_classes:
      office: [10.20.0.0/16]
      engineering: [10.30.0.0/16]
    services:
      video-conference: [192.0.2.0/24]

- name: Preview what would be stored and suppressed
  shadowdesk.vdi.traffic_import:
    src: flows.json
    usage_classes: {office: [10.20.0.0/16]}
    k: 10
  check_mode: true
  register: preview
"""

RETURN = r"""
report:
  description: What the import read, used, suppressed and stored. Nothing in it identifies a desktop.
  returned: success
  type: dict
  contains:
    records:
      description: Flow records read.
      type: int
      sample: 120000
    used:
      description: Records attributed to a usage class (before suppression).
      type: int
      sample: 118200
    skipped:
      description: Records not used, per reason.
      type: dict
      sample: {"source is not in any usage class": 1800}
    examples:
      description: The first few skipped records with their number and reason (no field values).
      type: list
      elements: dict
      sample: [{"record": 12, "reason": "missing bytes"}]
    k:
      description: The O(k) applied.
      type: int
      sample: 5
    classes:
      description: Classes (usage class, application class, destination) kept.
      type: int
      sample: 42
    suppressed_classes:
      description: Classes seen from fewer than O(k) desktops, dropped.
      type: int
      sample: 3
    suppressed_flows:
      description: Flow records in the suppressed classes.
      type: int
      sample: 17
    rows:
      description: Hourly aggregate rows built.
      type: int
      sample: 1008
    added:
      description: Rows newly stored (would be stored, in check mode).
      type: int
      sample: 1008
    duplicates:
      description: Rows this export had stored before.
      type: int
      sample: 0
added:
  description: Same as RV(report.added).
  returned: success
  type: int
  sample: 1008
db:
  description: Path of the history store (or its PostgreSQL URL, without the password).
  returned: success
  type: str
  sample: /home/ops/.local/share/shadowdesk/history.sqlite3
msg:
  description: One-line summary.
  returned: always
  type: str
  sample: "flows: read 120000, used 118200, suppressed 3 classes (k=5), 1008 hourly rows added, 0 already stored"
"""
