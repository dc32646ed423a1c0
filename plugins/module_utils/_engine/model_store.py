# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: fitted Prophet models on disk: ``<model_dir>/<user>.json`` + ``<user>.meta.json``.

The model is Prophet's own JSON (``prophet.serialize.model_to_json``); the metadata says what it was fitted on
(history fingerprint, data range, config key), when, how long it took, with which library versions, plus the
residual spread the forecast's band needs. ``forecast`` reuses a model whose fingerprint and config match.
Writes are atomic (temp file + rename) so a crashed run never leaves half a model.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

from ansible_collections.shadowdesk.vdi.plugins.module_utils._deps import require
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

_SAFE = re.compile(r"[^A-Za-z0-9_.@-]")


def _name(user):
    if not user or user in (".", ".."):
        raise InvalidInput("invalid user name for a model file: %r" % (user,))
    return _SAFE.sub("_", str(user))


def paths(model_dir, user):
    base = os.path.join(model_dir, _name(user))
    return base + ".json", base + ".meta.json"


def _atomic_write(path, text):
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def versions():
    out = {}
    for name in ("prophet", "pandas", "numpy", "cmdstanpy"):
        try:
            out[name] = getattr(require(name), "__version__", "?")
        except Exception:  # version info is best effort
            out[name] = None
    return out


def save(model_dir, user, model, meta):
    serialize = require("prophet.serialize")
    mpath, metapath = paths(model_dir, user)
    meta = dict(meta)
    meta["user"] = user
    meta["versions"] = versions()
    _atomic_write(mpath, serialize.model_to_json(model))
    _atomic_write(metapath, json.dumps(meta, indent=1, sort_keys=True))
    return mpath


def load_meta(model_dir, user):
    _, metapath = paths(model_dir, user)
    try:
        with open(metapath, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load(model_dir, user):
    """(model, meta) or (None, None) when absent, unreadable or from another Prophet version."""
    meta = load_meta(model_dir, user)
    if meta is None:
        return None, None
    mpath, _ = paths(model_dir, user)
    if (meta.get("versions") or {}).get("prophet") != versions().get("prophet"):
        return None, None
    serialize = require("prophet.serialize")
    try:
        with open(mpath, encoding="utf-8") as f:
            return serialize.model_from_json(f.read()), meta
    except (OSError, ValueError, KeyError):
        return None, None
