"""A libvirt ``test:///`` driver node file holding many shadow desktops (fast unit tests, scale benchmarks).

``test:///PATH`` starts a driver whose state is read from PATH and lives as long as one connection: a module
that opens one connection (``plan_apply``) sees its own saves, restores and hot-plugs for the whole call. The
desktops carry the same ``<sd:desktop>`` metadata the libvirt backend writes, so ``list``/``get`` see them as
ours. Power states use the test driver's own elements (``test:runstate``, ``test:hasmanagedsave``).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

SD_NAMESPACE = "https://shadowdesk.invalid/vdi/1"  # the backend's namespace (_libvirt_domain.SD_NAMESPACE)
TEST_NAMESPACE = "http://libvirt.org/schemas/domain/test/1.0"
# libvirt's virDomainState numbers, as the test driver reads them
RUNSTATE = {"running": 1, "paused": 3, "shutoff": 5, "saved": 5}


def desktop_xml(name, user, state="saved", max_vcpus=4, max_memory_mib=8192, vcpus=1, memory_mib=2048):
    """One shadow desktop as a test-driver ``<domain>`` (``state``: running, paused, saved or shutoff)."""
    saved = "<test:hasmanagedsave/>" if state == "saved" else ""
    return f"""  <domain type='test' xmlns:test='{TEST_NAMESPACE}'>
    <name>{escape(name)}</name>
    <metadata>
      <sd:desktop xmlns:sd='{SD_NAMESPACE}'>
        <sd:user>{escape(user)}</sd:user>
        <sd:source>/golden/test.qcow2</sd:source>
        <sd:overlay>/desktops/{escape(name)}.qcow2</sd:overlay>
        <sd:storage>/desktops</sd:storage>
      </sd:desktop>
    </metadata>
    <memory unit='MiB'>{max_memory_mib}</memory>
    <currentMemory unit='MiB'>{memory_mib}</currentMemory>
    <vcpu placement='static' current='{vcpus}'>{max_vcpus}</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/desktops/{escape(name)}.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
    </devices>
    <test:runstate>{RUNSTATE[state]}</test:runstate>
    {saved}
  </domain>
"""


def write_node(path, desktops):
    """Write a node file; ``desktops`` is an iterable of dicts with desktop_xml's arguments. Returns the URI."""
    body = "".join(desktop_xml(**d) for d in desktops)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("<node>\n" + body + "</node>\n")
    return "test://" + str(path)
