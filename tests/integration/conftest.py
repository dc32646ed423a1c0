"""Fixtures shared by the integration tests: the PVE stand-in and the real libvirt test bed."""

from conftest_pve import pve_api, pve_stand_in  # noqa: F401  (fixtures)
from integration.testbed import libvirt_testbed, sd_domains  # noqa: F401  (fixtures)
