# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network forecast quality: rolling origin, 24 h ahead, against seasonal-naive and last-day baselines.

    python benchmarks/network_forecast.py --series FILE --json OUT [--part test|validation] [--model seasonal|prophet]

FILE is the CESNET CSV (``time_utc`` + ``n_bytes``), a long CSV ``series,timestamp_s,value`` or the Bitbrains
trace (``vm_id,timestamp_s,...,net_rx_kbs``: traffic *to* each server = demand for that destination). Values are
averaged per UTC hour. Origins are every 00:00 UTC of the evaluated part: ``test`` = the last ``--test-days``
(held back; reported), ``validation`` = the ``--validation-days`` before them (used to choose the defaults of
``_engine/traffic_forecast.py``; ``--grid`` searches them there). Writes::

    {"series": n, "median": {"product": {"smape", "coverage80", "mape"}, "seasonal_naive": {"smape", "mape"},
     "last_day": {"smape", "mape"}}, ...}

plus per-series values, the options used, and ``far_off``: the share of held-back hours whose actual exceeded
``--far-off`` times the upper band (what the "far off the prediction" blocking rule would have blocked).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import itertools
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".build", "collections"))

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import traffic_forecast as tf  # noqa: E402


def _open(path):
    return gzip.open(path, "rt", newline="") if path.endswith(".gz") else open(path, newline="")


def load_series(path):
    """{name: hourly numpy array (NaN = no sample)} aligned per series to whole UTC days."""
    sums, counts = {}, {}
    with _open(path) as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if "time_utc" in cols and "n_bytes" in cols:
            def rows():
                for r in reader:
                    ts = dt.datetime.fromisoformat(r["time_utc"]).timestamp()
                    yield "cesnet_n_bytes", ts, float(r["n_bytes"])
        elif {"series", "timestamp_s", "value"} <= set(cols):
            def rows():
                for r in reader:
                    yield r["series"], float(r["timestamp_s"]), float(r["value"])
        elif {"vm_id", "timestamp_s", "net_rx_kbs"} <= set(cols):
            def rows():
                for r in reader:
                    yield "vm%s" % r["vm_id"], float(r["timestamp_s"]), float(r["net_rx_kbs"])
        else:
            raise SystemExit("unknown series file format: columns %s" % cols)
        for name, ts, value in rows():
            hour = int(ts // 3600)
            key = (name, hour)
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + 1
    hours = {}
    for (name, hour) in sums:
        hours.setdefault(name, []).append(hour)
    out = {}
    for name, hs in hours.items():
        first = (min(hs) // 24) * 24
        last = (max(hs) // 24 + 1) * 24
        y = np.full(last - first, np.nan)
        for h in hs:
            y[h - first] = sums[(name, h)] / counts[(name, h)]
        out[name] = y
    return out


def smape(actual, forecast):
    ok = ~(np.isnan(actual) | np.isnan(forecast))
    a, f = actual[ok], np.clip(forecast[ok], 0, None)
    denom = np.abs(a) + np.abs(f)
    terms = np.where(denom > 0, 2 * np.abs(a - f) / np.where(denom > 0, denom, 1), 0.0)
    return float(terms.mean()) if len(terms) else float("nan")


def mape(actual, forecast):
    ok = ~(np.isnan(actual) | np.isnan(forecast)) & (actual > 0)
    if not ok.any():
        return float("nan")
    return float(np.mean(np.abs(actual[ok] - forecast[ok]) / actual[ok]))


def origins_for(y, part, test_days, validation_days):
    days = len(y) // 24
    if part == "test":
        first, last = days - test_days, days
    else:
        first, last = days - test_days - validation_days, days - test_days
    return [d * 24 for d in range(max(first, 1), last)]


def prophet_forecasts(y, origins):
    import logging
    logging.getLogger("cmdstanpy").setLevel(logging.ERROR)
    logging.getLogger("prophet").setLevel(logging.ERROR)
    import pandas as pd
    from prophet import Prophet
    p, lo, hi = (np.full((len(origins), 24), np.nan) for _n in range(3))
    ds_all = pd.date_range("2000-01-03", periods=len(y) + 24, freq="h")
    for i, o in enumerate(origins):
        start = max(0, o - 8 * 168)
        frame = pd.DataFrame({"ds": ds_all[start:o], "y": np.log1p(np.clip(y[start:o], 0, None))}).dropna()
        model = Prophet(interval_width=0.8, daily_seasonality=True, weekly_seasonality=True,
                        yearly_seasonality=False, uncertainty_samples=300)
        model.fit(frame)
        fc = model.predict(pd.DataFrame({"ds": ds_all[o:o + 24]}))
        p[i], lo[i], hi[i] = (np.expm1(fc[c].to_numpy()) for c in ("yhat", "yhat_lower", "yhat_upper"))
    return p, lo, hi


def evaluate(series, part, opts, args, model="seasonal"):
    per_series = {}
    thresholds = sorted({args.far_off, 10.0, 30.0})
    far_hits, far_total = dict.fromkeys(thresholds, 0), 0
    for name, y in sorted(series.items()):
        origins = origins_for(y, part, args.test_days, args.validation_days)
        if not origins:
            continue
        if model == "prophet":
            p, lo, hi = prophet_forecasts(y, origins)
        else:
            p, lo, hi = tf.band_forecasts(y, origins, opts)
        actual = np.vstack([y[o:o + 24] for o in origins])
        naive = np.vstack([y[o - 168:o - 144] if o >= 168 else np.full(24, np.nan) for o in origins])
        lastday = np.vstack([y[o - 24:o] for o in origins])
        # every method is scored on the same hours: those where the actual and both baselines are known
        common = np.isnan(naive) | np.isnan(lastday) | np.isnan(p)
        actual = np.where(common, np.nan, actual)
        ok = ~np.isnan(actual)
        inside = (actual >= lo) & (actual <= hi)
        for threshold in thresholds:
            far_hits[threshold] += int((actual > threshold * np.maximum(hi, 1e-9))[ok].sum())
        far_total += int(ok.sum())
        per_series[name] = {
            "product": {"smape": smape(actual, p), "mape": mape(actual, p),
                        "coverage80": float(inside[ok].mean()) if ok.any() else float("nan")},
            "seasonal_naive": {"smape": smape(actual, naive), "mape": mape(actual, naive)},
            "last_day": {"smape": smape(actual, lastday), "mape": mape(actual, lastday)},
            "origins": len(origins),
        }

    def med(method, metric):
        vals = [s[method][metric] for s in per_series.values() if not np.isnan(s[method][metric])]
        return round(float(np.median(vals)), 4) if vals else None

    beats = sum(1 for s in per_series.values() if s["product"]["smape"] <= s["seasonal_naive"]["smape"])
    return {
        "series": len(per_series),
        "median": {
            "product": {"smape": med("product", "smape"), "coverage80": med("product", "coverage80"),
                        "mape": med("product", "mape")},
            "seasonal_naive": {"smape": med("seasonal_naive", "smape"), "mape": med("seasonal_naive", "mape")},
            "last_day": {"smape": med("last_day", "smape"), "mape": med("last_day", "mape")},
        },
        "series_beating_seasonal_naive": beats,
        "far_off": {"share_of_hours_flagged": {str(t): round(far_hits[t] / far_total, 5) if far_total else None
                                               for t in thresholds}},
        "per_series": per_series,
    }


def grid_search(series, args):
    """Options chosen on the validation part only: first the point model (median sMAPE over the series), then the
    band width (coverage closest to 0.80) for the best point model."""
    points = []
    for weeks, days, day_weight, level_weight in itertools.product((1, 2, 4, 6), (1, 3, 7), (0.0, 0.25, 0.5, 0.75, 1.0),
                                                                   (0.0, 0.5)):
        if day_weight == 0 and days != 1:
            continue
        opts = tf.options({"weeks": weeks, "days": days, "day_weight": day_weight, "level_weight": level_weight,
                           "auto_day_weight": 0})
        scores = []
        for y in series.values():
            origins = origins_for(y, "validation", args.test_days, args.validation_days)
            if origins:
                actual = np.vstack([y[o:o + 24] for o in origins])
                scores.append(smape(actual, tf.point_forecasts(y, origins, opts)))
        points.append({"weeks": weeks, "days": days, "day_weight": day_weight, "level_weight": level_weight,
                       "smape": round(float(np.nanmedian(scores)), 4)})
    best = min(points, key=lambda r: r["smape"])
    bands = []
    for scale in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4):
        opts = tf.options(dict({k: best[k] for k in ("weeks", "days", "day_weight", "level_weight")},
                               band_scale=scale))
        r = evaluate(series, "validation", opts, args)
        bands.append({"band_scale": scale, "coverage80": r["median"]["product"]["coverage80"]})
    return {"points": sorted(points, key=lambda r: r["smape"]), "best_point": best, "bands": bands}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--series", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--part", choices=("test", "validation"), default="test")
    ap.add_argument("--model", choices=("seasonal", "prophet"), default="seasonal")
    ap.add_argument("--test-days", type=int, default=21)
    ap.add_argument("--validation-days", type=int, default=21)
    ap.add_argument("--far-off", type=float, default=3.0)
    ap.add_argument("--grid", action="store_true", help="search the options on the validation part")
    ap.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                    help="override a traffic_forecast option")
    args = ap.parse_args(argv)
    t0 = time.time()
    series = load_series(args.series)
    overrides = {k: float(v) for k, v in (o.split("=", 1) for o in args.option)}
    opts = tf.options(overrides)
    if args.grid:
        out = {"grid": grid_search(series, args)}
    else:
        out = evaluate(series, args.part, opts, args, args.model)
        out.update({"part": args.part, "model": args.model if args.model == "prophet" else tf.METHOD,
                    "options": opts, "test_days": args.test_days, "validation_days": args.validation_days})
    out["file"] = os.path.basename(args.series)
    out["seconds"] = round(time.time() - t0, 1)
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=1)
    summary = {k: v for k, v in out.items() if k not in ("per_series", "grid")}
    print(json.dumps(summary, indent=1))
    if args.grid:
        for row in out["grid"]["points"][:15]:
            print(row)
        for row in out["grid"]["bands"]:
            print(row)


if __name__ == "__main__":
    main()
