# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: argument_spec pieces shared by every module that talks to a hypervisor.

Mirrored by the doc fragment ``shadowdesk.vdi._connection``; both must change together. All of these options are
in the ``shadowdesk.vdi.vdi`` action group so ``module_defaults`` sets them once per play.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

CONNECTION_ARGS = dict(
    backend=dict(type="str", default="libvirt", choices=["libvirt", "proxmox"],
                 fallback=(env_fallback, ["SHADOWDESK_BACKEND"])),
    uri=dict(type="str", default="qemu:///system", fallback=(env_fallback, ["LIBVIRT_DEFAULT_URI"])),
    api_host=dict(type="str", fallback=(env_fallback, ["PROXMOX_HOST"])),
    api_port=dict(type="int", default=8006, fallback=(env_fallback, ["PROXMOX_PORT"])),
    api_user=dict(type="str", fallback=(env_fallback, ["PROXMOX_USER"])),
    api_password=dict(type="str", no_log=True, fallback=(env_fallback, ["PROXMOX_PASSWORD"])),
    api_token_id=dict(type="str", no_log=False, fallback=(env_fallback, ["PROXMOX_TOKEN_ID"])),
    api_token_secret=dict(type="str", no_log=True, fallback=(env_fallback, ["PROXMOX_TOKEN_SECRET"])),
    validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["PROXMOX_VALIDATE_CERTS"])),
    ca_path=dict(type="path", fallback=(env_fallback, ["PROXMOX_CA_PATH"])),
    node=dict(type="str", fallback=(env_fallback, ["PROXMOX_NODE"])),
    api_timeout=dict(type="int", default=60),
    shutdown_timeout=dict(type="float"),
    task_timeout=dict(type="float"),
    lock_timeout=dict(type="float"),
    poll_interval=dict(type="float", default=0.2),
)

CONNECTION_REQUIRED_IF = [
    ("backend", "proxmox", ["api_host", "api_user"]),
]


def connection_argument_spec(**extra):
    """The connection options plus a module's own options."""
    spec = {k: dict(v) for k, v in CONNECTION_ARGS.items()}
    spec.update(extra)
    return spec
