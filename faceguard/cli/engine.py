"""`faceguard embed | verify | eval pairs | eval identify | calibrate`: the engine on photo sets.

``verify --json``::

    {"a": str, "b": str, "distance": float, "threshold": float, "same": bool,
     "faces_in_a": int, "faces_in_b": int, "model": str}

``embed`` writes an .npz (tools.evaluate.EmbeddedSet: paths, emb, found); ``eval`` and
``calibrate`` print a summary and, with ``--json FILE``, write their numbers there.
"""

from __future__ import annotations

import json
from pathlib import Path

from faceguard.cli import common
from faceguard.cli.common import ENGINE, JSON_FILE, JSON_STDOUT, command, distance_threshold
from faceguard.errors import FaceGuardError


def _embed(pipeline, root, files):
    from faceguard.tools.evaluate import embed_files
    from faceguard.tools.progress import ProgressBar

    return embed_files(pipeline, root, files, progress=ProgressBar("embedding"))


# -- embed / verify ----------------------------------------------------------------------------
def cmd_embed(args) -> int:
    from faceguard.vision.image import list_images

    root = Path(args.root)
    if not root.is_dir():
        raise FaceGuardError(f"{root}: not a folder.")
    files = [str(p.relative_to(root)) for p in list_images(root)]
    if not files:
        raise FaceGuardError(f"{root}: no .jpg or .png files found.")
    es = _embed(common.load_pipeline(args), root, files)
    es.save(args.out)
    missing = int((~es.found).sum())
    print(f"{len(files)} images embedded to {args.out}; no face found in {missing} "
          f"(centre crop embedded instead)")
    return 0


def _one_face(pipeline, path):
    from faceguard.errors import NoFaceError
    from faceguard.vision.image import load_image
    from faceguard.vision.main_face import main_face

    rgb = load_image(path)
    results = pipeline.process(rgb)
    if not results:
        raise NoFaceError(f"{path}: no face found.")
    return main_face(results, rgb.shape), len(results)


def cmd_verify(args) -> int:
    from faceguard.settings import load_settings
    from faceguard.vision.pipeline import distance

    pipeline = common.load_pipeline(args)
    setting = args.threshold if args.threshold is not None else load_settings().threshold
    threshold = pipeline.threshold_for(1, setting)
    (fa, na), (fb, nb) = _one_face(pipeline, args.a), _one_face(pipeline, args.b)
    d = distance(fa.embedding, fb.embedding)
    same = d <= threshold
    out = {"a": str(args.a), "b": str(args.b), "distance": round(d, 4),
           "threshold": threshold, "same": bool(same), "faces_in_a": na, "faces_in_b": nb,
           "model": pipeline.model_id}
    if args.json:
        print(json.dumps(out))
    else:
        verdict = "same person" if same else "different people"
        print(f"{verdict}: distance {d:.3f} {'≤' if same else '>'} threshold {threshold:.3f}")
    return 0


# -- eval / calibrate --------------------------------------------------------------------------
def cmd_eval_pairs(args) -> int:
    from faceguard.tools import evaluate as ev

    pairs = ev.read_pairs(args.pairs)
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    ev.require_images(args.root, files)
    es = _embed(common.load_pipeline(args), args.root, files)
    r = ev.evaluate_pairs(es, pairs)
    r["faces_found"] = float(es.found.mean())
    lo, hi = r["accuracy_ci95"]
    print(f"pairs {r['pairs']}: accuracy {100 * r['accuracy']:.2f} % ± {100 * r['accuracy_std']:.2f} "
          f"({r['folds']}-fold; 95 % interval {100 * lo:.2f}–{100 * hi:.2f} %), threshold {r['threshold']:.3f}, "
          f"TAR@FAR1e-2 {100 * r['tar_at_far_0.01']:.1f} %, TAR@FAR1e-3 {100 * r['tar_at_far_0.001']:.1f} %, "
          f"faces found {100 * r['faces_found']:.1f} %")
    common.write_json(args.json, r)
    return 0


def _split_set(args, pipeline):
    from faceguard.tools import evaluate as ev

    split = ev.read_split(args.split)
    files = sorted(set(split.gallery_paths + split.probe_paths + split.stranger_paths))
    ev.require_images(args.root, files)
    return split, _embed(pipeline, args.root, files)


def cmd_eval_identify(args) -> int:
    from faceguard.tools import evaluate as ev

    common.refuse(args, {"draws": "--draws"}, "needs --gallery-size (it counts random galleries of that size)")
    draws = args.draws or 30
    split, es = _split_set(args, common.load_pipeline(args))
    r = ev.evaluate_identification(es, split, fpir=args.fpir)
    print(f"one-shot: gallery {r['gallery']}, probes {r['probes']}, strangers {r['strangers']}: "
          f"rank-1 {100 * r['rank1']:.1f} %, FNIR {100 * r['fnir']:.1f} % at FPIR "
          f"{100 * r['fpir']:.1f} % (threshold {r['threshold']:.3f})")
    out = {"whole": r}
    for size in args.gallery_size or []:
        o = ev.office_galleries(es, split, size, draws=draws, fpir=args.fpir)
        out[f"office_{size}"] = o
        cells = ", ".join(f"{rule}: {100 * o[rule]['hits_mean']:.1f} % let in "
                          f"(threshold {o[rule]['threshold']:.4f})" for rule in ("distance", "margin"))
        print(f"gallery of {size} ({draws} draws, {100 * args.fpir:g} % strangers): {cells}")
    common.write_json(args.json, out)
    return 0


def cmd_calibrate(args) -> int:
    import numpy as np

    from faceguard.tools import evaluate as ev

    if args.save and args.rule == "margin":  # known before any work: say so at once
        raise common.Refused("--save needs --rule distance (the setting is a plain-distance "
                             "threshold)")
    pipeline = common.load_pipeline(args)
    split, es = _split_set(args, pipeline)
    # The same scoring rule the door would use for a gallery of this size.
    rule = args.rule if args.rule != "auto" else pipeline.embedder.spec.rule_for(len(split.gallery_paths))
    r = ev.calibrate(es, split, fpir=args.fpir, rule=rule)
    print(f"{rule} rule, threshold {r['threshold']:.4f}: strangers accepted {100 * r['fpir']:.2f} % "
          f"({r['strangers']} stranger searches of a gallery of {r['gallery']}; single-photo "
          f"people alone {100 * r['single_photo_fpir']:.1f} %), enrolled people missed "
          f"{100 * r['fnir']:.1f} % per frame, rank-1 {100 * r['rank1']:.1f} %")
    if args.plot:
        from faceguard.tools.plot import distance_histograms

        distance_histograms(r["probe_scores"], r["stranger_scores"], r["threshold"], args.plot,
                            xlabel=f"{rule} score of the best gallery match (lower = more alike)")
        print(f"histograms written to {args.plot}")
    if args.save:
        from faceguard.settings import load_settings, save_settings

        s = load_settings()
        if rule != "distance":
            raise FaceGuardError("Only a plain-distance threshold can be saved as the setting: "
                                 "run again with --rule distance --save.")
        s.threshold = round(r["threshold"], 4)
        print(f"threshold saved to {save_settings(s)}")
    if args.curve:
        # The manifest's threshold curves for this model and data (models/README.md).
        labels = {row["path"]: row["identity"] for row in ev.read_tsv(Path(args.split).with_name("labels.tsv"))}
        impostor = ev.impostor_distances(es, labels)
        r["threshold_curve"] = ev.threshold_curve(impostor, args.fpir)
        r["visit_zones"] = _visit_zones(pipeline, es, labels, impostor, args.save_zones)
        office = {n: ev.office_galleries(es, split, n, draws=200, fpir=args.fpir)
                  for n in (20, 50, 100, 150, 200)}
        r["office"] = office
        # Never looser for a larger gallery: near 200 of the dev set's 237 people few strangers
        # are left per draw and the median wobbles upwards.
        margin = np.minimum.accumulate([o["margin"]["threshold"] for o in office.values()])
        r["margin_threshold_curve"] = [[n, round(float(t), 4)] for n, t in zip(office, margin, strict=True)]
        print(f"distance-rule curve (all impostor pairs): {r['threshold_curve']}")
        print(f"margin-rule curve (random galleries): {r['margin_threshold_curve']}")
        for n, o in office.items():
            print(f"  gallery {n:>3}: let in {100 * o['distance']['hits_mean']:.1f} % (distance, "
                  f"{o['distance']['threshold']:.4f}) vs {100 * o['margin']['hits_mean']:.1f} % "
                  f"(margin, {o['margin']['threshold']:.4f})")
    common.write_json(args.json, {k: v for k, v in r.items() if not k.endswith("scores")})
    return 0


def _visit_zones(pipeline, es, labels: dict[str, str], impostor, save: bool) -> dict:
    """Issue 21: per-visit strict / normal thresholds per gallery size (tools/visits.py);
    ``save`` writes them into the running model's entry of models/manifest.json."""
    from faceguard.tools import visits

    zones = visits.zone_curves(impostor)
    zones["visit"] = ("one photo per stranger visit (a visit's frames are nearly identical); "
                      "impostor pairs = every pair of photos of two different people")
    zones["measured_on"] = f"{len(labels)} labelled photos, {len(set(labels.values()))} people"
    ids = [labels.get(p, "") for p in es.paths]
    first: dict[str, int] = {}
    for i in sorted(range(len(es.paths)), key=lambda k: es.paths[k]):   # lowest-numbered photo
        first.setdefault(ids[i], i)
    first.pop("", None)
    check = {f"{k}({n})": t for k in ("strict", "normal") for n, t in zones[f"{k}_curve"] if n in (1, 20)}
    zones["mean_visit_check"] = visits.mean_visit_check(es.emb, ids, first, check)
    print(f"per-visit strict curve ({100 * zones['strict_fpir']:g} % of stranger visits): {zones['strict_curve']}")
    print(f"per-visit normal curve ({100 * zones['normal_fpir']:g} % of stranger visits): {zones['normal_curve']}")
    if save:
        from faceguard.atomic import write_text_atomic
        from faceguard.vision.models import MANIFEST_NAME

        path = pipeline.manifest.root / MANIFEST_NAME
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["embedders"][pipeline.embedder.spec.id]["visit_zones"] = zones
        write_text_atomic(path, json.dumps(raw, indent=2) + "\n")
        print(f"visit zones written to {path}")
    return zones


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def register(sub) -> None:
    p = command(sub, "embed", cmd_embed, parents=[ENGINE],
                help="embed every image under a folder into an .npz")
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, required=True)

    p = command(sub, "verify", cmd_verify, parents=[ENGINE, JSON_STDOUT],
                help="are two photos the same person?")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--threshold", type=distance_threshold, default=None,
                   help="same person when the distance is at most this (default: from settings)")

    ev = sub.add_parser("eval", help="measure accuracy on a labelled photo set")
    evsub = ev.add_subparsers(dest="what", required=True)
    p = command(evsub, "pairs", cmd_eval_pairs, parents=[ENGINE, JSON_FILE],
                help="verification accuracy on an LFW-format pairs file")
    p.add_argument("root", type=Path)
    p.add_argument("pairs", type=Path)
    p = command(evsub, "identify", cmd_eval_identify, parents=[ENGINE, JSON_FILE],
                help="one-shot open-set identification")
    p.add_argument("root", type=Path)
    p.add_argument("split", type=Path, help="path<TAB>identity<TAB>role (gallery|probe)")
    p.add_argument("--fpir", type=float, default=0.01)
    p.add_argument("--gallery-size", type=_sizes, metavar="N,N,...",
                   help="also random office-sized galleries, e.g. 20,100")
    p.add_argument("--draws", type=int, default=None,
                   help="random galleries per --gallery-size (default 30)")

    p = command(sub, "calibrate", cmd_calibrate, parents=[ENGINE, JSON_FILE],
                help="choose the threshold for a stranger-accept rate")
    p.add_argument("root", type=Path)
    p.add_argument("split", type=Path)
    p.add_argument("--fpir", type=float, default=0.01)
    p.add_argument("--plot", type=Path, help="PNG with the distance histograms")
    p.add_argument("--save", action="store_true", help="store the threshold in the settings")
    p.add_argument("--rule", choices=("auto", "distance", "margin"), default="auto",
                   help="scoring rule (auto: the one the door uses for this gallery size)")
    p.add_argument("--curve", action="store_true",
                   help="also the per-gallery-size thresholds of both scoring rules")
    p.add_argument("--save-zones", action="store_true",
                   help="with --curve: write the per-visit zone thresholds into models/manifest.json")
