# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: a lean Stan backend for Prophet's MAP fit: the same compiled Prophet model, the same CmdStan
optimizer, without cmdstanpy's per-fit overheads.

Prophet's own backend (``prophet.models.CmdStanPyBackend``) goes through cmdstanpy, which costs far more than the
optimisation itself for our small hourly series (measured, one 8-week hourly fit, ~40 Fourier columns):

* the data file is written by ``stanio`` in pure Python (~110 ms for the 1,344 x 40 design matrix);
* CmdStan's L-BFGS usually stops with "Line search failed to achieve a sufficient decrease" once it is at the
  optimum to within float precision (return code 1). cmdstanpy turns that into ``RuntimeError`` and Prophet then
  refits with Newton (~1 s). Those stops are accepted here: the CSV holds the last iterate, within ~0.3 of the
  Newton optimum in log density, and the forecasts match (``benchmarks/README.md``, "Forecast scale").

What this backend does instead: writes the JSON with the C encoder (the design matrix, identical for users on the
same local time grid, is serialised once per process and reused), runs the model binary directly
(``subprocess.run(..., check=False)``, one short-lived process in a temporary directory), reads the one-line CSV,
and accepts the ``init=`` / ``iter=`` / ``tol_*`` arguments Prophet forwards from ``Prophet.fit(df, **kwargs)`` so a
refit can start from the previous parameters with a small iteration budget. Newton is the fallback when L-BFGS
gives no usable point, as in Prophet.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile

from ansible_collections.shadowdesk.vdi.plugins.module_utils._deps import require

OPTIMIZE_ARGS = ("iter", "init_alpha", "tol_obj", "tol_rel_obj", "tol_grad", "tol_rel_grad", "tol_param",
                 "history_size")
PARAMS = ("k", "m", "delta", "beta", "sigma_obs")
_X_CACHE = {}
_X_CACHE_MAX = 16
_BACKEND = []


def _scratch():
    """Where the per-fit files go: ``SHADOWDESK_STAN_TMP``, else ``/dev/shm`` (RAM) when writable, else the default
    temporary directory. Each fit gets its own directory, removed afterwards."""
    for d in (os.environ.get("SHADOWDESK_STAN_TMP"), "/dev/shm"):
        if d and os.path.isdir(d) and os.access(d, os.W_OK):
            return d
    return None


def _exe():
    prophet = require("prophet")
    return os.path.join(os.path.dirname(prophet.__file__), "stan_model", "prophet_model.bin")


def _num(x):
    return round(float(x), 10)


def _list(values, digits=9):
    np = require("numpy")
    return json.dumps(np.round(np.asarray(values, dtype=float).ravel(), digits).tolist())


def _x_json(x):
    """JSON of the design matrix, cached by content (users on the same local grid share it)."""
    np = require("numpy")
    arr = np.ascontiguousarray(np.asarray(x, dtype=float))
    key = (arr.shape, hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest())
    text = _X_CACHE.get(key)
    if text is None:
        text = json.dumps(np.round(arr, 8).tolist())
        if len(_X_CACHE) >= _X_CACHE_MAX:
            _X_CACHE.pop(next(iter(_X_CACHE)))
        _X_CACHE[key] = text
    return text


def data_json(data):
    """Prophet's ``ModelInputData`` (as a dict) -> the Stan data file's text."""
    np = require("numpy")
    x = data["X"]
    x = x.to_numpy() if hasattr(x, "to_numpy") else x
    parts = ['"T": %d' % int(data["T"]), '"S": %d' % int(data["S"]), '"K": %d' % int(data["K"]),
             '"tau": %s' % repr(float(data["tau"])), '"trend_indicator": %d' % int(data["trend_indicator"])]
    for name in ("y", "t", "cap", "t_change", "sigmas"):
        parts.append('"%s": %s' % (name, _list(data[name])))
    for name in ("s_a", "s_m"):
        parts.append('"%s": %s' % (name, json.dumps([int(v) for v in np.asarray(data[name]).ravel()])))
    parts.append('"X": %s' % _x_json(x))
    return "{%s}" % ", ".join(parts)


def merge_init(default, custom):
    """Prophet's default init overridden by ``custom`` where the shapes match (lists or arrays are fine)."""
    np = require("numpy")
    out = {}
    for name in PARAMS:
        base = np.asarray(default[name], dtype=float)
        value = None if not custom or name not in custom else np.asarray(custom[name], dtype=float)
        if value is not None and value.size == base.size and np.all(np.isfinite(value)):
            base = value.reshape(base.shape)
        out[name] = base
    if float(np.ravel(out["sigma_obs"])[0]) <= 0:
        out["sigma_obs"] = np.asarray(default["sigma_obs"], dtype=float)
    return out


def init_json(init):
    parts = []
    for name in PARAMS:
        v = init[name]
        if name in ("delta", "beta"):
            parts.append('"%s": %s' % (name, _list(v, 12)))
        else:
            parts.append('"%s": %s' % (name, repr(float(require("numpy").ravel(v)[0]))))
    return "{%s}" % ", ".join(parts)


def read_output(path):
    """(column names, values) of a CmdStan optimize CSV, or None when there is no usable row."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [ln for ln in f.read().splitlines() if ln and not ln.startswith("#")]
    except OSError:
        return None
    if len(lines) < 2:
        return None
    names = lines[0].split(",")
    try:
        values = [float(v) for v in lines[1].split(",")]
    except ValueError:
        return None
    if len(values) != len(names) or not all(math.isfinite(v) for v in values[:1]):
        return None
    return names, values


def params_from_output(names, values, k_delta, k_beta):
    np = require("numpy")
    cols = {}
    for name, value in zip(names, values):
        base = name.split(".")[0].split("[")[0]
        if base in PARAMS:
            cols.setdefault(base, []).append(value)
    out = {}
    for name in PARAMS:
        arr = np.asarray(cols.get(name, []), dtype=float)
        want = {"delta": k_delta, "beta": k_beta}.get(name, 1)
        if arr.size != want or not np.all(np.isfinite(arr)):
            return None
        out[name] = arr.reshape((1, -1))
    return out


def optimize(stan_init, stan_data, **kwargs):
    """One MAP fit of Prophet's model. Returns (params dict as Prophet stores them, info dict)."""
    init = merge_init(stan_init, kwargs.pop("init", None))
    algorithm = str(kwargs.pop("algorithm", None) or ("Newton" if int(stan_data["T"]) < 100 else "LBFGS")).lower()
    extra = ["%s=%s" % (k, kwargs[k]) for k in OPTIMIZE_ARGS if kwargs.get(k) is not None and k != "iter"]
    n_iter = int(kwargs.get("iter") or 10000)
    work = tempfile.mkdtemp(prefix="sd-stan-", dir=_scratch())
    try:
        dpath, ipath, opath = (os.path.join(work, n) for n in ("data.json", "init.json", "out.csv"))
        with open(dpath, "w", encoding="utf-8") as f:
            f.write(data_json(stan_data))
        with open(ipath, "w", encoding="utf-8") as f:
            f.write(init_json(init))
        k_delta, k_beta = int(stan_data["S"]), int(stan_data["K"])
        tried = []
        for algo in (algorithm, "newton"):
            if algo in tried:
                continue
            tried.append(algo)
            cmd = [_exe(), "optimize", "algorithm=%s" % algo] + (extra if algo != "newton" else []) + [
                "iter=%d" % n_iter, "data", "file=%s" % dpath, "init=%s" % ipath, "random", "seed=1",
                "output", "file=%s" % opath, "refresh=0", "sig_figs=12"]
            if os.path.exists(opath):
                os.unlink(opath)
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                                  text=True, cwd=work)
            text = proc.stdout or ""
            stalled = "Line search failed" in text or "onvergence detected" in text
            out = read_output(opath)
            params = params_from_output(*out, k_delta, k_beta) if out else None
            if params is not None and (proc.returncode == 0 or stalled):
                return params, {"algorithm": algo, "returncode": proc.returncode, "lp": out[1][0],
                                "stalled": proc.returncode != 0}
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise RuntimeError("Stan optimize failed (return code %s): %s" % (proc.returncode, tail))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def backend():
    """A Prophet Stan backend object (one per process) that fits through ``optimize``."""
    if _BACKEND:
        return _BACKEND[0]
    models = require("prophet.models")

    class LeanCmdStanBackend(models.IStanBackend):
        """``IStanBackend`` whose ``fit`` is ``optimize`` above; sampling is not supported (MAP only)."""

        def __init__(self):  # pylint: disable=super-init-not-called
            self.model = _exe()
            self.stan_fit = None
            self.newton_fallback = True

        @staticmethod
        def get_type():
            return "CMDSTANPY"

        def load_model(self):
            return _exe()

        def fit(self, stan_init, stan_data, **kwargs):
            params, info = optimize(stan_init, stan_data, **kwargs)
            self.stan_fit = info
            return params

        def sampling(self, stan_init, stan_data, samples, **kwargs):
            raise NotImplementedError("the lean backend does MAP fits only (mcmc_samples=0)")

    _BACKEND.append(LeanCmdStanBackend())
    return _BACKEND[0]
