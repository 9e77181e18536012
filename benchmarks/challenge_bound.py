"""How fast ANY photo-check detector could let a fidgeting follower in (issue 20's 2 s goal).

An ideal observer knows the follower's lag and amplitude and the fidget's statistics; the head
is the dot's path (lagged, scaled) plus the shared clip's head movement as Gaussian noise with
the clip's own autocovariance (and 1° of landmark noise). Its best test (the whitened matched
filter) separates a follower from a head that does not see the path by

    d' = sqrt(sᵀ Σ⁻¹ s)     (s: the follower's answer, Σ: the fidget's covariance, per axis,
                              the head's resting position unknown),

so with ONE look at T seconds after the first path appears, a detector that lets at most 1 % of
non-followers in passes a follower with probability Φ(d' − 2.33). Real detectors do worse: they
do not know the lag or amplitude and look again and again. The same random paths as the door
(challenge.draw_path, 200 draws).

    python benchmarks/challenge_bound.py [--out benchmarks/results/challenge_bound.json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

import numpy as np

from faceguard.access.challenge import HOLD, draw_path
from faceguard.vision.pipeline import FacePipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from challenge import clip_fidget, enrolled_and_clip  # noqa: E402

STEP_S = 0.05
NOISE_DEG = 1.0
FALSE_ACCEPT_Z = 2.326          # one-sided 1 %


def autocovariance(x: np.ndarray, n: int) -> np.ndarray:
    x = x - x.mean()
    return np.array([np.dot(x[: len(x) - k], x[k:]) / len(x) for k in range(n)])


def separation(answer: np.ndarray, cov: np.ndarray) -> float:
    """d'² of one axis: the answer against the noise, with the resting position unknown."""
    inv = np.linalg.inv(cov)
    one = np.ones(len(answer))
    a, b = inv @ answer, inv @ one
    return float(answer @ a - (one @ a) ** 2 / (one @ b))


def paths_until(rng: random.Random, seconds: float) -> list:
    paths = [draw_path(rng, 0.0)]
    while paths[-1].ends_at < seconds:
        last = paths[-1]
        moves = [d for d in last.directions if d != HOLD]
        paths.append(draw_path(rng, last.ends_at + rng.uniform(0.25, 0.45), last.points[-1], after=moves[-1]))
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "challenge_bound.json")
    args = ap.parse_args()
    _, _, matcher, clip = enrolled_and_clip(FacePipeline.load("cpu"))
    fidget_at, length = clip_fidget(clip, matcher)
    move = fidget_at(0.0, 1.0)
    fidget = np.array([move(t) for t in np.arange(0.0, length, STEP_S)])      # (yaw, pitch) in degrees

    report: dict = {"noise_deg": NOISE_DEG, "one_look_false_accept": 0.01, "draws": args.draws, "results": {}}
    for scale in (1.0, 0.5, 0.25):
        for seconds in (2.0, 3.0, 4.0, 6.0):
            n = int(round(seconds / STEP_S))
            covs = [np.array([[c[abs(i - j)] for j in range(n)] for i in range(n)]) + NOISE_DEG ** 2 * np.eye(n)
                    for c in (autocovariance(scale * fidget[:, k], n) for k in (0, 1))]
            dprimes = []
            for draw in range(args.draws):
                rng = random.Random(draw)
                paths = paths_until(rng, seconds)
                lag, gain = rng.uniform(0.2, 0.6), rng.uniform(12.0, 20.0)
                t = np.arange(n) * STEP_S - lag
                dot = np.repeat(np.array(paths[0].points[:1]), n, axis=0)
                for p in paths:
                    later = t >= p.shown_at
                    dot[later] = p.position(t[later])
                dprimes.append(math.sqrt(sum(separation(gain * dot[:, k], covs[k]) for k in (0, 1))))
            passed = [0.5 * math.erfc(-(d - FALSE_ACCEPT_Z) / math.sqrt(2)) for d in dprimes]
            row = {"d_prime_median": round(float(np.median(dprimes)), 2),
                   "d_prime_p10": round(float(np.percentile(dprimes, 10)), 2),
                   "followers_passed": round(float(np.mean(passed)), 3)}
            report["results"][f"fidget ×{scale}, {seconds:.0f} s"] = row
            print(f"fidget ×{scale}, {seconds:.0f} s after the first path: ideal d' median {row['d_prime_median']} "
                  f"(10th percentile {row['d_prime_p10']}); one look at 1 % false accept passes "
                  f"{row['followers_passed']:.0%} of followers")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
