# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: pick the backend named by the ``backend`` option.

The adapters are imported statically on purpose: Ansible packs a module's module_utils by following its import
statements (AnsiballZ), so a computed ``importlib`` import would be missing on the target host. Importing an
adapter is cheap; each one loads its hypervisor client library only when it connects (``_deps.require``), so a
host needs only the client of the backend it uses.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.proxmox import ProxmoxBackend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

BACKENDS = {
    "libvirt": LibvirtBackend,
    "proxmox": ProxmoxBackend,
}


def select_backend(name, options):
    """Instantiate the backend called ``name`` with the module's parameters."""
    try:
        backend_class = BACKENDS[name]
    except KeyError:
        raise InvalidInput("Unknown backend %r; choose one of: %s" % (name, ", ".join(sorted(BACKENDS)))) from None
    return backend_class(options)
