# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the libvirt domain XML of a shadow desktop, as a jinja2 template.

Why these elements:
- ``<vcpu current=shadow>max</vcpu>`` and ``<memory>max</memory><currentMemory>shadow</currentMemory>``: the
  desktop is *defined* at full size and *runs* at shadow size, so growing it is a vCPU hot-add plus a balloon
  deflate, never a restart. No ``<maxMemory>``/DIMM hot-plug: the balloon is enough and works on every guest.
- ``<acpi/><apic/>``: without them QEMU cannot announce a hot-added vCPU to the guest.
- ``<memballoon><stats period='1'/>``: balloon plus the guest memory statistics used by ``utilisation``.
- the serial console goes to a log file with ``append='on'`` so a restart (or a restore) does not truncate what
  the guest printed before; tests read it.
- ``<metadata><sd:desktop>``: marks the domain as ours and records the overlay it owns, so ``remove`` deletes
  exactly that file and ``list`` ignores every other domain on the host.

jinja2 is imported through ``_deps`` (sanity's import test runs without it); the template autoescapes, so a
user name or path with ``<``/``&``/quotes cannot break the XML.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps

SD_NAMESPACE = "https://shadowdesk.invalid/vdi/1"
# Live-only metadata: the balloon *target* last asked for (see libvirt.py _record_balloon_target for why).
BALLOON_NAMESPACE = "https://shadowdesk.invalid/vdi/1/balloon"

DOMAIN_TEMPLATE = """\
<domain type='{{ domain_type }}'>
  <name>{{ name }}</name>
  <metadata>
    <sd:desktop xmlns:sd='{{ namespace }}'>
      <sd:user>{{ user }}</sd:user>
      <sd:source>{{ source }}</sd:source>
      <sd:overlay>{{ overlay }}</sd:overlay>
      <sd:storage>{{ storage }}</sd:storage>
    </sd:desktop>
  </metadata>
  <memory unit='MiB'>{{ max_memory_mib }}</memory>
  <currentMemory unit='MiB'>{{ shadow_memory_mib }}</currentMemory>
  <vcpu placement='static' current='{{ shadow_vcpus }}'>{{ max_vcpus }}</vcpu>
  <os>
    <type arch='{{ arch }}'{% if machine_type %} machine='{{ machine_type }}'{% endif %}>hvm</type>
{%- if kernel %}
    <kernel>{{ kernel }}</kernel>
{%- if initrd %}
    <initrd>{{ initrd }}</initrd>
{%- endif %}
{%- if cmdline %}
    <cmdline>{{ cmdline }}</cmdline>
{%- endif %}
{%- else %}
    <boot dev='hd'/>
{%- endif %}
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
{%- if cpu_mode %}
  <cpu mode='{{ cpu_mode }}'/>
{%- endif %}
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
{%- if emulator %}
    <emulator>{{ emulator }}</emulator>
{%- endif %}
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='{{ overlay }}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
{%- if network %}
    <interface type='network'>
      <source network='{{ network }}'/>
      <model type='virtio'/>
    </interface>
{%- endif %}
    <serial type='file'>
      <source path='{{ serial_log }}' append='on'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='{{ serial_log }}' append='on'/>
      <target type='serial' port='0'/>
    </console>
{%- if graphics %}
    <graphics type='{{ graphics }}' autoport='yes' listen='{{ graphics_listen }}'>
      <listen type='address' address='{{ graphics_listen }}'/>
    </graphics>
    <video>
      <model type='{{ "qxl" if graphics == "spice" else "vga" }}'/>
    </video>
{%- endif %}
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <memballoon model='virtio'>
      <stats period='1'/>
    </memballoon>
  </devices>
</domain>
"""

# Defaults of the ``spec.machine`` overrides. TCG ('qemu') because that is what works everywhere (KVM needs
# /dev/kvm); production hosts set domain_type: kvm.
MACHINE_DEFAULTS = {
    "domain_type": "qemu",
    "arch": "x86_64",
    "machine_type": "",      # '' = libvirt's default machine type for the arch
    "cpu_mode": "",          # '' = hypervisor default; e.g. host-passthrough on KVM hosts
    "emulator": "",          # '' = libvirt's default emulator
    "graphics": "",          # '' = headless; 'spice' or 'vnc'
    "graphics_listen": "127.0.0.1",
    "serial_log_dir": "/var/log/libvirt/qemu",
}


def render_domain_xml(context):
    """Render DOMAIN_TEMPLATE with ``context`` (a dict of the template's names)."""
    jinja2 = _deps.require("jinja2")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(DOMAIN_TEMPLATE).render(namespace=SD_NAMESPACE, **context)
