"""The hypervisor key an autoscale task keeps its policy state under."""

from __future__ import annotations

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._autoscale_store import hypervisor_key


@pytest.fixture(autouse=True)
def no_connection_env(monkeypatch):
    for name in ("SHADOWDESK_BACKEND", "LIBVIRT_DEFAULT_URI", "PROXMOX_HOST", "PROXMOX_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("args, host, key", [
    ({}, "hv1", "libvirt qemu:///system on hv1"),  # the module's defaults: the local libvirt of the task's host
    ({"uri": "qemu:///system"}, "hv2", "libvirt qemu:///system on hv2"),
    ({"uri": "qemu+ssh://root@hv3/system"}, "localhost", "libvirt qemu+ssh://root@hv3/system"),
    ({"backend": "proxmox", "api_host": "pve.example.com"}, "localhost", "proxmox pve.example.com:8006"),
    ({"backend": "proxmox", "api_host": "pve.example.com", "api_port": 443, "node": "n2"}, "x",
     "proxmox pve.example.com:443"),  # one cluster, whichever node the connection names
])
def test_the_key_names_the_hypervisor_not_the_host_the_task_runs_on(args, host, key):
    assert hypervisor_key(args, host) == key


def test_environment_defaults_count_as_the_module_would_take_them(monkeypatch):
    monkeypatch.setenv("SHADOWDESK_BACKEND", "proxmox")
    monkeypatch.setenv("PROXMOX_HOST", "pve.lan")
    assert hypervisor_key({}, "localhost") == "proxmox pve.lan:8006"


def test_proxmox_without_an_api_host_is_a_clear_error():
    with pytest.raises(InvalidInput, match="api_host"):
        hypervisor_key({"backend": "proxmox"}, "localhost")
