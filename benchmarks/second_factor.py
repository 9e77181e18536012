"""The second factor's operating point on the dev data (issue 21, item 6), per VISIT.

    python benchmarks/second_factor.py                      # embeds the dev set (~1 min on CPU)
    python benchmarks/second_factor.py --embeddings dev.npz # or reuses `faceguard embed`'s .npz

For 20, 100 and 500 enrolled people with 1, 2 and 3 vectors per person (the enrolment photo plus
0, 1 or 2 learned templates), with the per-visit zone thresholds of models/manifest.json sized for
people × vectors (templates are more chances for a stranger):

* strangers: the share of stranger visits let in at once (≤ strict) and sent to the keypad
  (≤ normal); measured directly on random galleries, and, because the dev set holds only 237
  people (a gallery of 500 cannot be drawn: 200 are, with the thresholds of 500, and the
  strangers left beside a large gallery are few), also from the per-comparison rate p over all
  171,139 impostor photo pairs: 1 − (1 − p)^(people × vectors). Below strict, fewer than 5 pairs
  exist (the thresholds there are extrapolated, tools/visits.py), so 0 pairs read as 0 %: the
  data cannot show 0.01 %, only that nothing was let in;
* employees: the share of their visits let in at once, asked for a PIN, or denied.

A visit is ONE photo (as the calibration, tools/visits.py: a door visit's frames are nearly
identical). Employees are the 44 dev people with 4 or more photos: photos 1-3 (by number) are the
enrolment photo and the two templates, photos 4+ their visits, so the visits are the same for 1, 2
and 3 vectors. Templates are kept only where the door would keep them: within normal(1) of the
enrolment photo. At a real door the templates come from the door's own camera, so they should
help more than LFW photos taken years apart. The zone of a visit is the nearest person's (over
all their vectors); a visit nearest to someone else is counted as denied (its PIN is not theirs),
and reported apart if within strict (let in as someone else).

With ``--visit-frames NPZ`` (benchmarks/visit_frames.py) the same rows follow for a second visit
model: a visit = the fused mean of 5 SIMULATED camera frames of the photo (shift, scale, exposure,
blur, noise, JPEG: what a webcam changes between frames of a still face; no pose change), as the
door fuses its deciding frames; a confirmed visit's fused embedding is the template, as at the
door. Those rows use thresholds calibrated on the fused visits' own stranger pairs by the
manifest's method (against enrolment photos and against fused templates, the stricter of the two),
not the manifest's. The one-photo rows always come first and are unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from faceguard.tools import visits  # noqa: E402
from faceguard.tools.evaluate import EmbeddedSet, embed_files, impostor_distances, read_tsv  # noqa: E402
from faceguard.vision.models import load_manifest  # noqa: E402

DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "lfw_dev_fold1"
SIZES = (20, 100, 500)
VECTORS = (1, 2, 3)
MIN_PHOTOS = 4


def embeddings(path: Path | None) -> EmbeddedSet:
    if path is not None and path.exists():
        return EmbeddedSet.load(path)
    from faceguard.vision.pipeline import FacePipeline

    files = [r["path"] for r in read_tsv(DEV / "labels.tsv", ("path", "identity"))]
    es = embed_files(FacePipeline.load(provider="cpu"), DEV, files)
    if path is not None:
        es.save(path)
    return es


def people_photos(es: EmbeddedSet) -> dict[str, list[int]]:
    labels = {r["path"]: r["identity"] for r in read_tsv(DEV / "labels.tsv", ("path", "identity"))}
    out: dict[str, list[int]] = {}
    for i in sorted(range(len(es.paths)), key=lambda k: es.paths[k]):
        out.setdefault(labels[es.paths[i]], []).append(i)
    return out


@dataclass(frozen=True)
class VisitModel:
    """What a visit is in one set of rows: ``visits`` [N, D] the embedding each photo's visit is
    scored with, ``templates`` [N, D] what a confirmed visit of that photo leaves as a template
    (the door keeps the fused visit), ``impostor`` the stranger pairs the thresholds and the
    from-pairs rates come from, ``thresholds(n)`` → (strict, normal) for n gallery vectors."""

    name: str
    visits: np.ndarray
    templates: np.ndarray
    impostor: np.ndarray
    thresholds: Callable[[int], tuple[float, float]]


def one_photo_model(es: EmbeddedSet) -> VisitModel:
    """A visit = one photo; the manifest's thresholds (calibrated the same way)."""
    spec = load_manifest().embedder()
    labels = {r["path"]: r["identity"] for r in read_tsv(DEV / "labels.tsv", ("path", "identity"))}
    emb = es.emb.astype(np.float32)
    return VisitModel("one photo", emb, emb, impostor_distances(es, labels),
                      lambda n: (spec.threshold_for(n, "visit-strict"), spec.threshold_for(n, "visit-normal")))


def fused_model(es: EmbeddedSet, frames_npz: Path) -> VisitModel:
    """A visit = the mean of simulated camera frames of the photo (benchmarks/visit_frames.py),
    re-normalised, as the door fuses its deciding frames. Its thresholds are calibrated on ITS
    stranger pairs (tools/visits.zone_curves, the manifest's method): fused visits against other
    people's enrolment photos and against their fused templates, the lower curve of the two."""
    with np.load(frames_npz, allow_pickle=False) as z:
        where = {str(p): i for i, p in enumerate(z["paths"])}
        frames = z["frames"][[where[str(p)] for p in es.paths]]
    fused = frames.mean(axis=1)
    fused = (fused / np.linalg.norm(fused, axis=1, keepdims=True)).astype(np.float32)
    labels = {r["path"]: r["identity"] for r in read_tsv(DEV / "labels.tsv", ("path", "identity"))}
    ids = np.array([labels[str(p)] for p in es.paths])
    other = ids[:, None] != ids[None, :]
    emb = es.emb.astype(np.float32)
    to_photo = np.sort((2.0 - 2.0 * fused @ emb.T)[other])
    iu = np.triu_indices(len(ids), 1)
    to_fused = np.sort((2.0 - 2.0 * fused @ fused.T)[iu][other[iu]])
    base = load_manifest().embedder()
    specs = [replace(base, visit_strict_curve=_points(c["strict_curve"]), visit_normal_curve=_points(c["normal_curve"]))
             for c in (visits.zone_curves(to_photo), visits.zone_curves(to_fused))]

    def thresholds(n: int) -> tuple[float, float]:
        return (min(s.threshold_for(n, "visit-strict") for s in specs),
                min(s.threshold_for(n, "visit-normal") for s in specs))

    return VisitModel(f"fused {frames.shape[1]} simulated camera frames", fused, fused, to_photo, thresholds)


def _points(curve: list) -> tuple[tuple[int, float], ...]:
    return tuple((int(n), float(t)) for n, t in curve)


def run(es: EmbeddedSet, draws: int, seed: int, model: VisitModel | None = None) -> dict:
    model = model or one_photo_model(es)
    photos = people_photos(es)
    emb = es.emb.astype(np.float32)
    anchor = load_manifest().embedder().threshold_for(1, "visit-normal")
    employees_pool = sorted(p for p, rows in photos.items() if len(rows) >= MIN_PHOTOS)
    others = sorted(p for p in photos if p not in employees_pool)
    rng = np.random.default_rng(seed)
    out = []
    for size in SIZES:
        real = min(size, len(photos) - 37)           # keep ≥ 37 people as strangers
        for k in VECTORS:
            n_eff = size * k
            strict, normal = model.thresholds(n_eff)
            tally = {"emp_visits": 0, "at_once": 0, "pin": 0, "denied": 0, "as_other": 0,
                     "str_visits": 0, "str_at_once": 0, "str_grey": 0, "pairs": 0, "pairs_strict": 0,
                     "pairs_normal": 0, "templates": 0, "templates_refused": 0}
            for _ in range(draws):
                n_emp = min(len(employees_pool), real)
                emps = list(rng.choice(employees_pool, n_emp, replace=False))
                dist = list(rng.choice([p for p in others + employees_pool if p not in emps],
                                       real - n_emp, replace=False))
                members = emps + dist
                owner, vecs = [], []
                for p in members:
                    rows = photos[p]
                    owner.append(p)
                    vecs.append(emb[rows[0]])                # the one enrolment photo
                    if p in emps:
                        for r in rows[1:k]:
                            t = model.templates[r]
                            if float(np.sum((t - emb[rows[0]]) ** 2)) <= anchor:
                                owner.append(p)
                                vecs.append(t)
                                tally["templates"] += 1
                            else:
                                tally["templates_refused"] += 1
                g = np.stack(vecs)
                owner_arr = np.asarray(owner)
                for p in emps:
                    d = 2.0 - 2.0 * (model.visits[photos[p][3:]] @ g.T)
                    best = d.argmin(axis=1)
                    score = d[np.arange(len(best)), best]
                    mine = owner_arr[best] == p
                    tally["emp_visits"] += len(best)
                    tally["at_once"] += int(np.sum(mine & (score <= strict)))
                    tally["pin"] += int(np.sum(mine & (score > strict) & (score <= normal)))
                    tally["as_other"] += int(np.sum(~mine & (score <= strict)))
                strangers = [r for p in photos if p not in members for r in photos[p]]
                d = 2.0 - 2.0 * (model.visits[strangers] @ g.T)
                best = d.min(axis=1)
                tally["str_visits"] += len(strangers)
                tally["str_at_once"] += int(np.sum(best <= strict))
                tally["str_grey"] += int(np.sum((best > strict) & (best <= normal)))
            tally["denied"] = tally["emp_visits"] - tally["at_once"] - tally["pin"]
            # per comparison, over all the visit model's stranger pairs (a count of 0 reads as 0)
            impostor = model.impostor
            tally["pairs"] = len(impostor)
            tally["pairs_strict"] = int(np.sum(impostor <= strict))
            tally["pairs_normal"] = int(np.sum(impostor <= normal))
            p_s, p_n = tally["pairs_strict"] / tally["pairs"], tally["pairs_normal"] / tally["pairs"]
            ext_s = 1 - (1 - p_s) ** n_eff
            ext_n = 1 - (1 - p_n) ** n_eff
            out.append({
                "visit": model.name,
                "enrolled": size, "enrolled_in_draw": real, "vectors_per_person": k, "draws": draws,
                "strict": round(strict, 4), "normal": round(normal, 4),
                "employees_at_once": tally["at_once"] / tally["emp_visits"],
                "employees_asked_pin": tally["pin"] / tally["emp_visits"],
                "employees_denied": tally["denied"] / tally["emp_visits"],
                "employees_let_in_as_someone_else": tally["as_other"] / tally["emp_visits"],
                "employee_visits": tally["emp_visits"] // draws,
                "strangers_at_once_measured": tally["str_at_once"] / tally["str_visits"],
                "strangers_grey_measured": tally["str_grey"] / tally["str_visits"],
                "stranger_visits": tally["str_visits"] // draws,
                "strangers_at_once_from_pairs": ext_s,
                "strangers_grey_from_pairs": ext_n - ext_s,
                "impostor_pairs": tally["pairs"], "impostor_pairs_within_strict": tally["pairs_strict"],
                "impostor_pairs_within_normal": tally["pairs_normal"],
                "templates_kept": tally["templates"] // draws, "templates_refused_by_anchor":
                tally["templates_refused"] // draws,
            })
    return {"rows": out, "employees_pool": len(employees_pool), "people": len(photos)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embeddings", type=Path, help="dev-set .npz (faceguard embed); made when missing")
    ap.add_argument("--draws", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--visit-frames", type=Path, metavar="NPZ",
                    help="also rows where a visit is the fused mean of simulated camera frames "
                         "(benchmarks/visit_frames.py --out NPZ), with thresholds calibrated on them")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "second_factor.json")
    args = ap.parse_args()
    es = embeddings(args.embeddings)
    started = time.perf_counter()
    models = [one_photo_model(es)] + ([fused_model(es, args.visit_frames)] if args.visit_frames else [])
    rows: list[dict] = []
    for model in models:
        result = run(es, args.draws, args.seed, model)
        rows += result["rows"]
    print(f"{'visit':>24} {'enrolled':>8} {'vecs':>4} {'strict':>6} {'normal':>6}  {'at once':>8} {'PIN':>6} "
          f"{'denied':>7}  {'str. at once':>12} {'str. grey':>9}  (from pairs: at once, grey)")
    for r in rows:
        print(f"{r['visit'][:24]:>24} {r['enrolled']:>8} {r['vectors_per_person']:>4} {r['strict']:>6.3f} "
              f"{r['normal']:>6.3f}  {100 * r['employees_at_once']:7.1f}% {100 * r['employees_asked_pin']:5.1f}% "
              f"{100 * r['employees_denied']:6.1f}%  {100 * r['strangers_at_once_measured']:11.3f}% "
              f"{100 * r['strangers_grey_measured']:8.2f}%  ({100 * r['strangers_at_once_from_pairs']:.3f}%, "
              f"{100 * r['strangers_grey_from_pairs']:.2f}%)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "second_factor", "data": "LFW dev fold 1 (shared/data/lfw_dev_fold1)",
        "visit": [m.name for m in models], "seed": args.seed, "seconds": round(time.perf_counter() - started, 1),
        "rows": rows, "employees_pool": result["employees_pool"], "people": result["people"],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg": os.getloadavg()},
    }, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
