"""Fixtures shared by the integration tests: the PVE stand-in and the real libvirt test bed.

Test files use these fixtures by name; they must not import them again.
"""

from conftest_pve import pve_api, pve_stand_in
from integration.desks import desk
from integration.testbed import libvirt_testbed, sd_domains

__all__ = ["desk", "libvirt_testbed", "pve_api", "pve_stand_in", "sd_domains"]
