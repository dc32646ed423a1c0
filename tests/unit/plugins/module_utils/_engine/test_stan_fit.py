"""The lean Stan backend's pure parts: data/init files, CmdStan CSV parsing, warm-start merging."""

import json

import numpy as np

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import stan_fit


def test_data_json_is_stan_json_and_caches_the_design_matrix():
    x = np.arange(12, dtype=float).reshape(4, 3) / 7.0
    data = {"T": 4, "S": 1, "K": 3, "tau": 0.05, "trend_indicator": 0, "y": np.array([0, 0.5, 1, 0.25]),
            "t": np.linspace(0, 1, 4), "cap": np.zeros(4), "t_change": np.array([0.5]), "s_a": np.ones(3),
            "s_m": np.zeros(3), "X": x, "sigmas": [10.0, 10.0, 10.0]}
    d = json.loads(stan_fit.data_json(data))
    assert d["T"] == 4 and d["s_a"] == [1, 1, 1] and d["t_change"] == [0.5]
    assert np.allclose(d["X"], x, atol=1e-8)
    assert len(stan_fit._X_CACHE) >= 1  # pylint: disable=protected-access


def test_merge_init_takes_matching_shapes_only():
    default = {"k": 0.0, "m": 0.0, "delta": np.zeros(3), "beta": np.zeros(4), "sigma_obs": 1.0}
    got = stan_fit.merge_init(default, {"k": [0.2], "m": 0.1, "delta": [1, 2, 3], "beta": [1, 2], "sigma_obs": 0.3})
    assert float(got["k"]) == 0.2 and list(got["delta"]) == [1, 2, 3]
    assert list(got["beta"]) == [0, 0, 0, 0]  # wrong size: Prophet's default
    assert json.loads(stan_fit.init_json(got))["sigma_obs"] == 0.3


def test_read_output_and_params(tmp_path):
    csv = tmp_path / "out.csv"
    csv.write_text("# comment\nlp__,k,m,delta.1,beta.1,beta.2,sigma_obs,trend.1\n12.5,0.1,0.2,0.0,1.5,-1.5,0.3,9\n")
    names, values = stan_fit.read_output(str(csv))
    params = stan_fit.params_from_output(names, values, 1, 2)
    assert params["beta"].shape == (1, 2) and float(params["sigma_obs"][0, 0]) == 0.3
    assert stan_fit.params_from_output(names, values, 2, 2) is None
    assert stan_fit.read_output(str(tmp_path / "missing.csv")) is None
