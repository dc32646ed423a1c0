# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: where runtime state lives and how it is written (stdlib only).

An installed collection is read-only, so history, models, forecasts, plans and reports go to the data directory.
Every file there is written through a temporary file and a rename, so a crash or a full disk never leaves a
half-written plan or model that the next scheduled run would read.
"""

from __future__ import annotations

import os
import tempfile


def default_data_dir():
    """``$SHADOWDESK_DATA_DIR`` or ``~/.local/share/shadowdesk`` (docs/architecture.md, Runtime state)."""
    return os.environ.get("SHADOWDESK_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".local", "share",
                                                                 "shadowdesk")


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
