"""Shared pytest setup: make sure the collection is importable by its full name."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINK = ROOT / ".build" / "collections" / "ansible_collections" / "shadowdesk" / "vdi"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(ROOT, LINK)

os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build" / "collections"))
