"""How tight can the strict (at once) threshold be on the dev data? (issue 21, docs/zone-calibration.md)

    python benchmarks/zone_tail.py --embeddings dev.npz      # ~1 min on 2 cores

The strict threshold must let in at most 0.01 % of stranger visits for n gallery vectors, i.e. a
per-comparison rate q = 1 − (1 − 10⁻⁴)^(1/n): 10⁻⁴ for one person, 5·10⁻⁶ for 20, 2·10⁻⁷ for 500.
The dev set holds 171,139 stranger pairs, so from n ≈ 4 on fewer than 5 pairs lie below and the
threshold is extrapolated (tools/visits.py: a normal distribution fitted to the lowest 2 %). This
script measures that extrapolation three ways:

1. fit quality: the fitted quantile against the data's own where the data reaches;
2. out of sample: fit on the pairs among a random half (or 70 %) of the people, predict how many
   pairs among the OTHER people fall below thresholds the fit half barely reaches, and count
   them (the check the extrapolation needs: does the model over- or under-state the rate?);
3. the model and its confidence: the strict thresholds from the normal fit and from the textbook
   extreme-value model for a tail (a generalised Pareto distribution over the lowest 0.1 %,
   probability-weighted moments), each with a bootstrap over PEOPLE (photos of one person are
   not independent) giving the 5 / 50 / 95 % points;

and, for scale, the share of employee visits (dev people with ≥ 4 photos, photo 1 enrolled,
photos 4+ visiting, one photo per visit as in benchmarks/second_factor.py) within each threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from second_factor import DEV, MIN_PHOTOS, embeddings, people_photos  # noqa: E402

from faceguard.tools import visits  # noqa: E402
from faceguard.tools.evaluate import read_tsv  # noqa: E402

SIZES = (1, 3, 20, 100, 500)
CHECK_AT = (0.10, 0.105, 0.11, 0.115, 0.12, 0.13)
GPD_SHARE = 0.001


def gpd_threshold(impostor: np.ndarray, q: float, share: float = GPD_SHARE) -> float:
    """The q-quantile of the impostor distances from a generalised Pareto fit of the lowest
    ``share`` (exceedances below their upper end ``u``; Hosking & Wallis' probability-weighted
    moments, shape k > 0 = a bounded tail)."""
    d = np.sort(np.asarray(impostor, np.float64))
    n = max(20, int(share * len(d)))
    u = d[n]
    y = np.sort(u - d[:n])                             # exceedances, ascending
    a0 = float(np.mean(y))
    a1 = float(np.mean(y * (n - 1 - np.arange(n)) / (n - 1)))
    k = a0 / (a0 - 2 * a1) - 2
    sigma = 2 * a0 * a1 / (a0 - 2 * a1)
    p = min(1.0, q * len(d) / n)                       # exceedance probability within the tail
    excess = sigma * np.log(1 / p) if abs(k) < 1e-9 else sigma * (1 - p ** k) / k
    return float(u - excess)


def normal_threshold(impostor: np.ndarray, q: float) -> float:
    mean, sd = visits.tail_fit(impostor)
    return mean + sd * NormalDist().inv_cdf(q)


def pair_distances(emb: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Sorted distances of every pair among ``rows`` (indices, repeats allowed) of two different
    people (a person drawn twice by the bootstrap is still one person)."""
    e = emb[rows]
    who = ids[rows]
    iu = np.triu_indices(len(rows), 1)
    d = (2.0 - 2.0 * e @ e.T)[iu]
    return np.sort(d[who[iu[0]] != who[iu[1]]])


def out_of_sample(emb, ids, people, frac: float, splits: int, rng) -> dict:
    obs = np.zeros(len(CHECK_AT))
    pred = {"normal tail fit (manifest)": np.zeros(len(CHECK_AT)), "GPD lowest 0.1 %": np.zeros(len(CHECK_AT))}
    d = 2.0 - 2.0 * emb @ emb.T
    for _ in range(splits):
        fit_people = set(rng.choice(people, int(frac * len(people)), replace=False))
        in_fit = np.array([p in fit_people for p in ids])
        fit = pair_distances(emb, ids, np.flatnonzero(in_fit))
        held = np.triu(ids[:, None] != ids[None, :], 1) & ~(in_fit[:, None] & in_fit[None, :])
        test = d[held]
        obs += [np.sum(test <= t) for t in CHECK_AT]
        mean, sd = visits.tail_fit(fit)
        pred["normal tail fit (manifest)"] += [len(test) * NormalDist(mean, sd).cdf(t) for t in CHECK_AT]
        pred["GPD lowest 0.1 %"] += [len(test) * _gpd_rate(fit, t) for t in CHECK_AT]
    return {"fit_on_share_of_people": frac, "splits": splits, "thresholds": list(CHECK_AT),
            "observed_pairs": obs.astype(int).tolist(),
            "predicted_over_observed": {k: np.round(v / np.maximum(obs, 1), 2).tolist() for k, v in pred.items()}}


def _gpd_rate(impostor: np.ndarray, t: float) -> float:
    """The per-pair rate below ``t`` under the GPD fit (the empirical rate above its range)."""
    lo, hi = 1e-12, 1.0
    if t >= gpd_threshold(impostor, GPD_SHARE):
        return float(np.mean(impostor <= t))
    for _ in range(60):                                 # invert gpd_threshold by bisection in log q
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if gpd_threshold(impostor, mid) < t else (lo, mid)
    return float(np.sqrt(lo * hi))


def run(es, boot: int, seed: int) -> dict:
    labels = {r["path"]: r["identity"] for r in read_tsv(DEV / "labels.tsv", ("path", "identity"))}
    ids = np.array([labels[str(p)] for p in es.paths])
    emb = es.emb.astype(np.float64)
    people = np.array(sorted(set(ids)))
    impostor = pair_distances(emb, ids, np.arange(len(ids)))
    rng = np.random.default_rng(seed)
    out: dict = {"impostor_pairs": int(len(impostor)), "lowest_pairs": np.round(impostor[:8], 4).tolist()}
    out["fit_quality"] = [{"q": q, "pairs_below": round(q * len(impostor), 1),
                           "data": round(float(np.quantile(impostor, q)), 4),
                           "normal_fit": round(normal_threshold(impostor, q), 4),
                           "gpd_fit": round(gpd_threshold(impostor, q), 4) if q < GPD_SHARE else None}
                          for q in (1e-2, 1e-3, 3e-4, 1e-4, 5e-5, 3e-5)]
    out["out_of_sample"] = [out_of_sample(emb, ids, people, f, 30, rng) for f in (0.5, 0.7)]
    qs = [visits.per_comparison_rate(visits.STRICT_FPIR, n) for n in SIZES]
    draws = {"normal": [], "gpd": []}
    for _ in range(boot):
        rows = np.concatenate([np.flatnonzero(ids == p) for p in rng.choice(people, len(people))])
        d = pair_distances(emb, ids, rows)
        draws["normal"].append([normal_threshold(d, q) for q in qs])
        draws["gpd"].append([gpd_threshold(d, q) for q in qs])
    photos = people_photos(es)
    genuine = np.concatenate([2.0 - 2.0 * emb[rows[3:]] @ emb[rows[0]]
                              for rows in photos.values() if len(rows) >= MIN_PHOTOS])
    out["strict"] = []
    for j, n in enumerate(SIZES):
        row = {"vectors": n, "q": qs[j]}
        for name, fit in (("normal", normal_threshold), ("gpd", gpd_threshold)):
            t = fit(impostor, qs[j])
            row[name] = round(t, 4)
            row[f"{name}_boot_5_50_95"] = np.round(np.percentile([b[j] for b in draws[name]], [5, 50, 95]), 4).tolist()
            row[f"employees_within_{name}"] = round(float(np.mean(genuine <= t)), 3)
        out["strict"].append(row)
    out["employee_visits"] = int(len(genuine))
    out["employees_within"] = {f"{t:.3f}": round(float(np.mean(genuine <= t)), 3)
                               for t in (0.0835, 0.09, 0.094, 0.1, 0.1145)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embeddings", type=Path, help="dev-set .npz (faceguard embed); made when missing")
    ap.add_argument("--boot", type=int, default=100, help="bootstrap draws over people")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "zone_tail.json")
    args = ap.parse_args()
    started = time.perf_counter()
    result = run(embeddings(args.embeddings), args.boot, args.seed)
    print("fit quality (threshold at per-pair rate q): q, pairs below, data, normal fit, GPD fit")
    for r in result["fit_quality"]:
        gpd = "  (fit range)" if r["gpd_fit"] is None else f"{r['gpd_fit']:.4f}"
        print(f"  {r['q']:.0e} {r['pairs_below']:>7} {r['data']:.4f} {r['normal_fit']:.4f} {gpd}")
    for o in result["out_of_sample"]:
        print(f"out of sample (fit on {100 * o['fit_on_share_of_people']:.0f} % of the people, {o['splits']} splits): "
              f"thresholds {o['thresholds']}, observed pairs {o['observed_pairs']}")
        for name, ratio in o["predicted_over_observed"].items():
            print(f"  {name}: predicted / observed {ratio}")
    print("strict threshold (0.01 % of stranger visits): vectors, normal [boot 5/50/95] employees, "
          "GPD [boot 5/50/95] employees")
    for r in result["strict"]:
        print(f"  {r['vectors']:>4} {r['normal']:.4f} {r['normal_boot_5_50_95']} {100 * r['employees_within_normal']:.0f} %"
              f"   {r['gpd']:.4f} {r['gpd_boot_5_50_95']} {100 * r['employees_within_gpd']:.0f} %")
    print(f"employee visits within a threshold ({result['employee_visits']} visits): {result['employees_within']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "zone_tail", "data": "LFW dev fold 1 (shared/data/lfw_dev_fold1)", "seed": args.seed,
        "boot": args.boot, "seconds": round(time.perf_counter() - started, 1), **result,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
    }, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
