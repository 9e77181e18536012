"""The flip pass at the door: what the probe's embedding mode does to accuracy against a
flip-averaged gallery (the enrolment photos keep the flip pass), on the dev scorer.

    python benchmarks/flip_at_door.py [--out benchmarks/results/flip_at_door.json]

Modes: ``flip`` (every probe frame flip-averaged), ``plain`` (no flip pass at the door),
and ``lazy`` (what the door does, faceguard/access/lazy_flip.py: plain first; the flip pass
where the plain score votes for someone or lies within ``FLIP_MARGIN`` of the door's threshold;
a dev probe is its own one-frame visit, so every voting probe gets it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from engine import accuracy, all_files
from int8 import dev_chips, raw_embeddings

from faceguard.access.lazy_flip import FLIP_MARGIN
from faceguard.tools import evaluate as ev
from faceguard.vision.embed import l2_normalise
from faceguard.vision.pipeline import FacePipeline

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "flip_at_door.json")
    args = ap.parse_args()
    pipeline = FacePipeline.load("cpu", flip=False)
    pairs, split, labels, files = all_files()
    chips, found = dev_chips(pipeline, files)
    plain, mirror = raw_embeddings(pipeline.embedder, chips)
    flip = l2_normalise(plain + mirror)
    names = np.array(files, dtype=str)
    gallery = np.isin(names, split.gallery_paths)
    out: dict = {}
    for mode, probe in (("flip", flip), ("plain", plain)):
        mixed = np.where(gallery[:, None], flip, probe)
        out[mode] = accuracy(ev.EmbeddedSet(names, mixed, found), pairs, split, labels)
    # nearest gallery distance of every non-gallery photo, plain vs flip probe
    g = flip[gallery]
    d_plain = np.min(((plain[~gallery, None] - g[None]) ** 2).sum(-1), 1)
    d_flip = np.min(((flip[~gallery, None] - g[None]) ** 2).sum(-1), 1)
    diff = np.abs(d_flip - d_plain)
    out["nearest_distance_change"] = {q: float(np.percentile(diff, q)) for q in (50, 90, 99, 100)}
    threshold = pipeline.threshold_for(len(set(split.gallery_ids)))
    d_all = np.full(len(names), -np.inf)
    d_all[~gallery] = d_plain
    lazy_probe = np.where((d_all <= threshold + FLIP_MARGIN)[:, None], flip, plain)
    mixed = np.where(gallery[:, None], flip, lazy_probe)
    out["lazy_door"] = accuracy(ev.EmbeddedSet(names, mixed, found), pairs, split, labels)
    out["lazy_door_share_flipped"] = float(np.mean(d_plain <= threshold + FLIP_MARGIN))
    margin = float(diff.max())
    out["lazy_threshold"] = threshold
    out["lazy_margin"] = margin
    out["lazy_share_needing_flip"] = float(np.mean(np.abs(d_plain - threshold) < margin))
    lazy = np.where(np.abs(d_plain - threshold) < margin, d_flip, d_plain)
    out["lazy_votes_differing_from_flip"] = int(np.sum((lazy <= threshold) != (d_flip <= threshold)))
    for k, v in out.items():
        print(k, {m: round(x, 4) for m, x in v.items() if isinstance(x, float)} if isinstance(v, dict) else v)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
