#!/usr/bin/env python3
"""Rolling-origin Prophet backtest on the series of the forecast benchmark.

Runs Prophet (pip package `prophet`, default settings, 80% intervals) the way
a cron job would: refit on all data up to a cutoff every REFIT of data, and
use that fit for every row whose timestamp is between cutoff + HORIZON and
cutoff + HORIZON + REFIT. Rows of the first day are warm-up and not scored,
as in `go run ./bench/backtest`. Metrics have the same definitions as there:
MASE is the mean absolute error over that of the naive forecast (the last
value known at timestamp - horizon) on the same rows; MAPE skips zero
actuals; sMAPE skips rows where actual and forecast are both zero; coverage
is the share of rows inside [yhat_lower, yhat_upper].

CPU time includes the Stan child processes (os.times children).

    python3 bench/prophet/prophet_backtest.py [--data ../shared/data] \
        [--horizon-min 30] [--refit-min 360] [--out bench/prophet/results.csv]
"""
import argparse
import glob
import logging
import os
import sys
import time

import numpy as np
import pandas as pd

logging.getLogger("prophet").setLevel(logging.ERROR)
logging.getLogger("cmdstanpy").setLevel(logging.ERROR)
logging.getLogger("cmdstanpy").disabled = True
from prophet import Prophet  # noqa: E402


def cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def read(path):
    df = pd.read_csv(path)
    tcol = "timestamp" if "timestamp" in df.columns else "ts"
    t = df[tcol]
    if pd.api.types.is_numeric_dtype(t):
        ds = pd.to_datetime(t, unit="s")
    else:
        ds = pd.to_datetime(t)
    return pd.DataFrame({"ds": ds, "y": df["value"].astype(float)})


def backtest(df, horizon, refit, warmup):
    ts = df["ds"].values
    y = df["y"].values
    start = ts[0] + warmup
    rows = np.where(ts >= start)[0]
    fc = np.full(len(df), np.nan)
    lo = np.full(len(df), np.nan)
    hi = np.full(len(df), np.nan)
    naive = np.full(len(df), np.nan)
    fits = 0
    fit_cpu = 0.0
    cutoff = start - horizon
    while cutoff + horizon <= ts[-1]:
        block = rows[(ts[rows] >= cutoff + horizon) & (ts[rows] < cutoff + horizon + refit)]
        hist = df[df["ds"] <= cutoff]
        if len(block) and len(hist) >= 2:
            c0 = cpu()
            m = Prophet(interval_width=0.8)
            m.fit(hist)
            p = m.predict(df.iloc[block][["ds"]])
            fit_cpu += cpu() - c0
            fits += 1
            fc[block] = p["yhat"].values
            lo[block] = p["yhat_lower"].values
            hi[block] = p["yhat_upper"].values
            for i in block:
                k = np.searchsorted(ts, ts[i] - horizon, side="right") - 1
                naive[i] = y[k]
        cutoff = cutoff + refit
    ok = ~np.isnan(fc)
    a, f, l, u, nv = y[ok], fc[ok], lo[ok], hi[ok], naive[ok]
    e = np.abs(a - f)
    nz = a != 0
    sd = np.abs(a) + np.abs(f)
    return {
        "rows": int(ok.sum()),
        "fits": fits,
        "cpu_s": fit_cpu,
        "mase": e.sum() / np.abs(a - nv).sum() if np.abs(a - nv).sum() > 0 else float("nan"),
        "smape": float(np.mean(200 * e[sd > 0] / sd[sd > 0])),
        "mape": float(np.mean(100 * e[nz] / np.abs(a[nz]))) if nz.any() else float("nan"),
        "coverage": float(np.mean((a >= l) & (a <= u))),
    }


def main():
    ap = argparse.ArgumentParser()
    # ../shared/data next to the repository (bench/prophet is two levels down).
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data"))
    ap.add_argument("--horizon-min", type=float, default=30)
    ap.add_argument("--refit-min", type=float, default=360)
    ap.add_argument("--warmup-h", type=float, default=24)
    ap.add_argument("--out", default="bench/prophet/results.csv")
    ap.add_argument("--only", default="", help="substring filter on file names")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.data, "traces/crane/*.csv.gz")) +
                   glob.glob(os.path.join(args.data, "nab/data/realAWSCloudwatch/*.csv")))
    files = [f for f in files if args.only in f]
    horizon = np.timedelta64(int(args.horizon_min * 60), "s")
    refit = np.timedelta64(int(args.refit_min * 60), "s")
    warmup = np.timedelta64(int(args.warmup_h * 3600), "s")
    out = []
    for f in files:
        name = os.path.basename(f).replace(".csv.gz", "").replace(".csv", "")
        t0 = time.time()
        r = backtest(read(f), horizon, refit, warmup)
        r["series"] = name
        out.append(r)
        print(f"{name}: MASE {r['mase']:.3f} sMAPE {r['smape']:.2f} MAPE {r['mape']:.2f} "
              f"cover {100*r['coverage']:.1f}% fits {r['fits']} CPU {r['cpu_s']:.1f}s "
              f"({1000*r['cpu_s']/max(r['rows'],1):.2f} ms/forecast, {r['cpu_s']/max(r['fits'],1):.2f} s/fit) "
              f"wall {time.time()-t0:.0f}s", flush=True)
        pd.DataFrame(out).to_csv(args.out, index=False)
    d = pd.DataFrame(out)
    print(f"\nmean MASE {d.mase.mean():.3f} mean sMAPE {d.smape.mean():.2f} mean coverage {100*d.coverage.mean():.1f}% "
          f"CPU {d.cpu_s.sum():.0f}s for {d.rows.sum()} forecasts ({1000*d.cpu_s.sum()/d.rows.sum():.2f} ms/forecast), "
          f"{d.fits.sum()} fits ({d.cpu_s.sum()/d.fits.sum():.2f} s/fit)")


if __name__ == "__main__":
    sys.exit(main())
