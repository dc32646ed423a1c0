# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE doc fragment: how flows are reduced to anonymous classes (traffic_import, traffic_sample). Must match
FLOW_CLASS_ARGS in module_utils/_decisions/flow_aggregate.py."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  app_classes:
    description:
      - Application classes by protocol and destination port, C(name -> ["tcp/443", "udp/53", "tcp/8000-8100"]).
        Flows that match none are C(other).
      - Default C(web), C(dns), C(remote_desktop), C(mail), C(ssh), C(video) with their usual ports.
    type: dict
  services:
    description: Named destinations, C(name -> [CIDR, ...]); a destination inside one is stored under its name.
    type: dict
  prefix_v4:
    description: Prefix length an IPv4 destination outside a service is reduced to (8-32).
    type: int
    default: 24
  prefix_v6:
    description: Prefix length an IPv6 destination outside a service is reduced to (16-128).
    type: int
    default: 48
  k:
    description: A class seen from fewer desktops than this (in the export or the sample) is suppressed (1-1000).
    type: int
    default: 5
"""
