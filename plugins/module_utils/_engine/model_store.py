# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: fitted Prophet models on disk: ``<model_dir>/<user>.json`` + ``<user>.meta.json``.

The model file is compact when the model is one of our plain additive seasonal models (``meta["light"]``: the
seasonalities, time scaling, changepoints and the fitted parameters k, m, delta, beta, sigma_obs: ~2 KB, written
and read in well under a millisecond); models with holidays or regressors are stored as Prophet's own JSON
(``prophet.serialize.model_to_json``, which also carries the training history: ~100x larger, ~30 ms to load).
The metadata says what it was fitted on (history fingerprint, data range, config key), when, how long it took,
with which library versions, plus the residual spread the forecast's band needs and the compact parameters, so a
reuse or a warm start reads only the meta file. ``forecast`` reuses a model whose fingerprint and config match.
Writes are atomic (temp file + rename) so a crashed run never leaves half a model.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.shadowdesk.vdi.plugins.module_utils._deps import require
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import write_text_atomic

_SAFE = re.compile(r"[^A-Za-z0-9_.@-]")


def _name(user):
    if not user or user in (".", ".."):
        raise InvalidInput("invalid user name for a model file: %r" % (user,))
    return _SAFE.sub("_", str(user))


def paths(model_dir, user):
    base = os.path.join(model_dir, _name(user))
    return base + ".json", base + ".meta.json"


def versions():
    out = {}
    for name in ("prophet", "pandas", "numpy", "cmdstanpy"):
        try:
            out[name] = getattr(require(name), "__version__", "?")
        except Exception:  # version info is best effort
            out[name] = None
    return out


_VERSIONS = []
COMPACT = "shadowdesk-compact-1"


def save(model_dir, user, model, meta):
    mpath, metapath = paths(model_dir, user)
    meta = dict(meta)
    meta["user"] = user
    if not _VERSIONS:
        _VERSIONS.append(versions())
    meta["versions"] = _VERSIONS[0]
    if meta.get("light"):
        text = json.dumps({"format": COMPACT, "model": meta["light"]}, sort_keys=True)
    else:
        text = require("prophet.serialize").model_to_json(model)
    write_text_atomic(mpath, text)
    write_text_atomic(metapath, json.dumps(meta, sort_keys=True))
    return mpath


def load_meta(model_dir, user):
    metapath = paths(model_dir, user)[1]
    try:
        with open(metapath, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load(model_dir, user):
    """(Prophet model, meta) or (None, None) when absent, unreadable, compact (see ``meta["light"]``) or from
    another Prophet version."""
    meta = load_meta(model_dir, user)
    if meta is None or meta.get("light"):
        return None, None
    mpath = paths(model_dir, user)[0]
    if (meta.get("versions") or {}).get("prophet") != versions().get("prophet"):
        return None, None
    serialize = require("prophet.serialize")
    try:
        with open(mpath, encoding="utf-8") as f:
            return serialize.model_from_json(f.read()), meta
    except (OSError, ValueError, KeyError):
        return None, None
