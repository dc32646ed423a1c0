"""pytest fixtures for the Proxmox VE stand-in.

Use from a test module with ``from conftest_pve import pve_stand_in, pve_api  # noqa: F401`` (pytest puts
``tests/integration`` on ``sys.path`` for modules in it), or list ``"conftest_pve"`` in ``pytest_plugins`` of
the root conftest. ``tests/`` must be importable so that ``stand_ins`` resolves; this module adds it when
the pytest configuration does not.
"""
from __future__ import annotations

import os
import sys

import pytest

_TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _TESTS_DIR not in sys.path:  # until pytest.ini puts tests/ on pythonpath
    sys.path.insert(0, _TESTS_DIR)

from stand_ins.pve_api_server import PveStandIn  # noqa: E402


@pytest.fixture
def pve_stand_in():
    """A fresh two-node stand-in (pve1, pve2) with fast tasks; stopped after the test."""
    with PveStandIn(nodes=("pve1", "pve2"), task_duration=0.05, file_lock_timeout=2.0) as pve:
        yield pve
        # A request that crashed the stand-in is a stand-in bug, never a client success.
        assert not pve.internal_errors, pve.internal_errors[0].get("traceback")


@pytest.fixture
def pve_api(pve_stand_in):
    """A proxmoxer client authenticated with the stand-in's API token, verifying TLS with its CA."""
    proxmoxer = pytest.importorskip("proxmoxer")
    pve = pve_stand_in
    return proxmoxer.ProxmoxAPI(pve.host, port=pve.port, user=pve.token_user, token_name=pve.token_name,
                                token_value=pve.token_value, verify_ssl=pve.ca_path, backend="https")
