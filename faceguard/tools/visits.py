"""Per-VISIT zone thresholds (issue 21): strict (at once) and normal (grey zone, a PIN) per
gallery size, from a labelled photo set's embeddings.

A door decides once per visit, on the fused embedding of the visit's deciding frames (their
mean, re-normalised). A visit's frames are nearly identical (consecutive frames of one face lie
0.011 apart on the shared clip, median), so their mean is close to any one of them: on LFW we
take ONE PHOTO as a stranger's visit. The other reading, a visit = the re-normalised mean of
several LFW photos of one person, is measured beside (``mean_visit_check``): such means lie
NEARER to other people's photos (on the dev set 1.9 % of comparisons within normal(1) instead of
1.0 %), so a visit fused from frames that vary as much as different LFW photos would be let in
about twice as often as calibrated; a door's frames vary far less. The benchmark
(benchmarks/second_factor.py) reports the per-visit rates under both readings.

A stranger is let in when ANY of the ``n`` gallery vectors (people, plus their learned
templates) lies within the threshold, so the per-comparison rate must be
q = 1 − (1 − fpir)^(1/n), and the threshold is the q-quantile of the impostor distances (every
pair of photos of two different people). At 0.01 % of visits q falls below what the data
holds (q·pairs < 5): there the lower tail is fitted with a normal distribution (least squares
of the lowest 2 % of impostor distances against normal quantiles) and extrapolated; each point
says which way it was measured.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

STRICT_FPIR = 1e-4        # strangers let in by the face alone, per visit
NORMAL_FPIR = 1e-2        # strangers reaching the PIN keypad, per visit
ZONE_SIZES = (1, 2, 3, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 1500)
TAIL_SHARE = 0.02         # the lowest 2 % of impostor distances fit the tail
MIN_SUPPORT = 5           # fewer impostor pairs than this below a quantile: extrapolate


def per_comparison_rate(fpir: float, n: int) -> float:
    return 1.0 - (1.0 - fpir) ** (1.0 / max(1, int(n)))


def tail_fit(impostor: np.ndarray, share: float = TAIL_SHARE) -> tuple[float, float]:
    """(mean, sd) of the normal distribution that best fits the lowest ``share`` of the sorted
    impostor distances (least squares against normal quantiles at plotting positions)."""
    d = np.sort(np.asarray(impostor, np.float64))
    k = max(20, int(share * len(d)))
    probs = (np.arange(1, k + 1) - 0.5) / len(d)
    z = np.array([NormalDist().inv_cdf(p) for p in probs])
    sd, mean = np.polyfit(z, d[:k], 1)
    return float(mean), float(sd)


def zone_threshold(impostor: np.ndarray, fpir: float, n: int, fit: tuple[float, float]) -> tuple[float, str]:
    """(threshold, how) for ``fpir`` of stranger visits at ``n`` gallery vectors."""
    d = np.sort(np.asarray(impostor, np.float64))
    q = per_comparison_rate(fpir, n)
    if q * len(d) >= MIN_SUPPORT:
        return float(np.quantile(d, q)), "empirical"
    mean, sd = fit
    return mean + sd * NormalDist().inv_cdf(q), "tail-fit"


def zone_curves(impostor: np.ndarray, sizes=ZONE_SIZES, strict: float = STRICT_FPIR,
                normal: float = NORMAL_FPIR) -> dict:
    """The manifest's ``visit_zones`` entry: both curves, never looser for a larger gallery,
    with how each point was measured."""
    fit = tail_fit(impostor)
    out: dict = {"strict_fpir": strict, "normal_fpir": normal, "impostor_pairs": int(len(impostor)),
                 "tail_fit": {"mean": round(fit[0], 4), "sd": round(fit[1], 4), "share": TAIL_SHARE}}
    for key, fpir in (("strict", strict), ("normal", normal)):
        points: list[list] = []
        how: dict[str, str] = {}
        for n in sizes:
            t, method = zone_threshold(impostor, fpir, n, fit)
            if points:
                t = min(t, points[-1][1])
            points.append([int(n), round(t, 4)])
            how[str(n)] = method
        out[f"{key}_curve"] = points
        out[f"{key}_how"] = how
    return out


def mean_visit_check(emb: np.ndarray, ids: list[str], enrol_index: dict[str, int],
                     thresholds: dict[str, float]) -> dict:
    """The other visit definition, for comparison: a person's visit = the re-normalised mean of
    their photos other than the enrolment one, compared with every OTHER person's enrolment
    photo; the share of such (visit, person) pairs within each threshold (a per-comparison rate)."""
    ids_arr = np.asarray(ids)
    people = sorted(enrol_index)
    g = emb[[enrol_index[p] for p in people]]
    visits, owners = [], []
    for p in people:
        rows = [i for i in np.flatnonzero(ids_arr == p) if i != enrol_index[p]]
        if rows:
            m = emb[rows].mean(axis=0)
            visits.append(m / np.linalg.norm(m))
            owners.append(p)
    if not visits:
        return {}
    d = 2.0 - 2.0 * (np.stack(visits) @ g.T)
    other = np.asarray(owners)[:, None] != np.asarray(people)[None, :]
    impostor = d[other]
    single = []
    for i, p in enumerate(ids):
        single.append(np.delete(2.0 - 2.0 * (g @ emb[i]), people.index(p)) if p in enrol_index else
                      2.0 - 2.0 * (g @ emb[i]))
    singles = np.concatenate(single)
    return {"mean_visits": len(visits), "pairs": int(impostor.size),
            "per_comparison_rate": {k: {"mean_visit": float(np.mean(impostor <= t)),
                                        "one_photo_visit": float(np.mean(singles <= t))}
                                    for k, t in thresholds.items()}}
