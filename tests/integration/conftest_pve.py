"""pytest fixtures for the Proxmox VE stand-in.

``tests/integration/conftest.py`` imports them and exports them in ``__all__``: test modules use the fixtures by
name and never import them. ``stand_ins`` resolves because pytest.ini puts ``tests/`` on ``pythonpath``.
"""
from __future__ import annotations

import pytest
from stand_ins.pve_api_server import PveStandIn


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
