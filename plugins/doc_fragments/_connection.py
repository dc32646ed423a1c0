# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE doc fragment: connection options. Must match plugins/module_utils/_argspec.py CONNECTION_ARGS."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  backend:
    description:
      - Which hypervisor API to talk to.
      - Set it once per play with C(module_defaults) for the action group C(group/shadowdesk.vdi.vdi).
      - If not set, the environment variable E(SHADOWDESK_BACKEND) is used.
    type: str
    choices: [libvirt, proxmox]
    default: libvirt
  uri:
    description:
      - libvirt connection URI (libvirt backend only), for example V(qemu:///system) on the hypervisor host or
        V(qemu+ssh://root@host/system) from the controller.
      - If not set, the environment variable E(LIBVIRT_DEFAULT_URI) is used.
    type: str
    default: qemu:///system
  api_host:
    description:
      - Proxmox VE API host name or address (Proxmox backend only). Required when O(backend=proxmox).
      - If not set, the environment variable E(PROXMOX_HOST) is used.
    type: str
  api_port:
    description:
      - Proxmox VE API port.
      - If not set, the environment variable E(PROXMOX_PORT) is used.
    type: int
    default: 8006
  api_user:
    description:
      - Proxmox VE user, for example V(shadowdesk@pve). Required when O(backend=proxmox).
      - If not set, the environment variable E(PROXMOX_USER) is used.
    type: str
  api_password:
    description:
      - Password of O(api_user) (ticket authentication). Use an API token instead where possible.
      - If not set, the environment variable E(PROXMOX_PASSWORD) is used.
    type: str
  api_token_id:
    description:
      - Name of the API token of O(api_user), for example V(shadowdesk) for V(shadowdesk@pve!shadowdesk).
      - If not set, the environment variable E(PROXMOX_TOKEN_ID) is used.
    type: str
  api_token_secret:
    description:
      - Secret (UUID) of the API token.
      - If not set, the environment variable E(PROXMOX_TOKEN_SECRET) is used.
    type: str
  validate_certs:
    description:
      - Verify the Proxmox VE API's TLS certificate. Only turn this off in a lab.
      - If not set, the environment variable E(PROXMOX_VALIDATE_CERTS) is used.
    type: bool
    default: true
  ca_path:
    description:
      - A CA bundle file that signs the Proxmox VE API's certificate (for self-signed clusters).
      - If not set, the environment variable E(PROXMOX_CA_PATH) is used.
    type: path
  node:
    description:
      - Proxmox VE node to create desktops on (default the template's node).
      - If not set, the environment variable E(PROXMOX_NODE) is used.
    type: str
  api_timeout:
    description:
      - Seconds to wait for a hypervisor task (Proxmox task, libvirt shutdown) before failing.
      - Also bounds how long a hypervisor that stops answering is waited for. libvirt, the connection is opened
        within this time and then kept alive with keepalive probes, so a frozen or dead libvirtd ends the call
        with an error after at most about O(api_timeout) seconds (and at most 20) instead of hanging.
    type: int
    default: 60
  shutdown_timeout:
    description:
      - libvirt only, seconds a graceful stop (ACPI shutdown) waits for the guest before powering it off. The disk
        is kept either way and the result says when the desktop was forced off.
      - At most O(api_timeout). If not set, 20 (or O(api_timeout) when that is smaller).
    type: float
  task_timeout:
    description:
      - Proxmox VE only, seconds to wait for one API task (UPID) to finish. If not set, O(api_timeout).
    type: float
  lock_timeout:
    description:
      - Proxmox VE only, seconds to keep retrying while the VM holds a transient lock (backup, clone, migrate,
        snapshot). If not set, O(api_timeout).
    type: float
  poll_interval:
    description:
      - Proxmox VE only, seconds between the first two polls of a running task (it then backs off up to 2 s).
    type: float
    default: 0.2
requirements:
  - libvirt-python (libvirt backend), on the host the module runs on.
  - proxmoxer and requests (Proxmox backend), on the host the module runs on.
"""
