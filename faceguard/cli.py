"""`faceguard` command line: the same FacePipeline / Gallery / Decider the app uses, no UI.

Every FaceGuardError is printed as one line and exits 2; argparse errors exit 2 too.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from faceguard import __version__
from faceguard.errors import FaceGuardError

log = logging.getLogger("faceguard")


def _pipeline(args):
    from faceguard.settings import load_settings
    from faceguard.vision.pipeline import FacePipeline

    settings = load_settings()
    provider = getattr(args, "provider", None) or settings.provider
    flip = settings.flip_average if getattr(args, "flip", None) is None else args.flip
    return FacePipeline.load(provider, model_id=settings.model_id or None, flip=flip)


def add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default=None,
                   help="onnxruntime execution provider (default: from settings, 'auto')")
    p.add_argument("--no-flip", dest="flip", action="store_false", default=None,
                   help="embed the chip only, not chip + mirror image averaged")


# -- embed / verify ----------------------------------------------------------------------------
def cmd_embed(args) -> int:
    from faceguard.evaluate import embed_files
    from faceguard.vision.image import list_images

    root = Path(args.root)
    if not root.is_dir():
        raise FaceGuardError(f"{root}: not a folder.")
    files = [str(p.relative_to(root)) for p in list_images(root)]
    if not files:
        raise FaceGuardError(f"{root}: no .jpg or .png files found.")
    es = embed_files(_pipeline(args), root, files)
    es.save(args.out)
    missing = int((~es.found).sum())
    print(f"{len(files)} images embedded to {args.out}; no face found in {missing} "
          f"(centre crop embedded instead)")
    return 0


def _one_face(pipeline, path):
    from faceguard.errors import NoFaceError
    from faceguard.vision.image import load_image
    from faceguard.vision.pipeline import central_face

    rgb = load_image(path)
    results = pipeline.process(rgb)
    if not results:
        raise NoFaceError(f"{path}: no face found.")
    return central_face(results, rgb.shape), len(results)


def cmd_verify(args) -> int:
    from faceguard.settings import load_settings
    from faceguard.vision.pipeline import distance

    pipeline = _pipeline(args)
    threshold = pipeline.threshold_for(1, args.threshold or load_settings().threshold)
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
def _write_json(path, data) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")


def cmd_eval_pairs(args) -> int:
    from faceguard import evaluate as ev

    pairs = ev.read_pairs(args.pairs)
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    ev.require_images(args.root, files)
    es = ev.embed_files(_pipeline(args), args.root, files)
    r = ev.evaluate_pairs(es, pairs)
    r["faces_found"] = float(es.found.mean())
    lo, hi = r["accuracy_ci95"]
    print(f"pairs {r['pairs']}: accuracy {100 * r['accuracy']:.2f} % ± {100 * r['accuracy_std']:.2f} "
          f"({r['folds']}-fold; 95 % interval {100 * lo:.2f}–{100 * hi:.2f} %), threshold {r['threshold']:.3f}, "
          f"TAR@FAR1e-2 {100 * r['tar_at_far_0.01']:.1f} %, TAR@FAR1e-3 {100 * r['tar_at_far_0.001']:.1f} %, "
          f"faces found {100 * r['faces_found']:.1f} %")
    _write_json(args.json, r)
    return 0


def _split_set(args, pipeline):
    from faceguard import evaluate as ev

    split = ev.read_split(args.split)
    files = sorted(set(split.gallery_paths + split.probe_paths + split.stranger_paths))
    ev.require_images(args.root, files)
    return split, ev.embed_files(pipeline, args.root, files)


def cmd_eval_identify(args) -> int:
    from faceguard import evaluate as ev

    split, es = _split_set(args, _pipeline(args))
    r = ev.evaluate_identification(es, split, fpir=args.fpir)
    print(f"one-shot: gallery {r['gallery']}, probes {r['probes']}, strangers {r['strangers']}: "
          f"rank-1 {100 * r['rank1']:.1f} %, FNIR {100 * r['fnir']:.1f} % at FPIR "
          f"{100 * r['fpir']:.1f} % (threshold {r['threshold']:.3f})")
    out = {"whole": r}
    for size in args.gallery_size or []:
        o = ev.office_galleries(es, split, size, draws=args.draws, fpir=args.fpir)
        out[f"office_{size}"] = o
        cells = ", ".join(f"{rule}: {100 * o[rule]['hits_mean']:.1f} % let in "
                          f"(threshold {o[rule]['threshold']:.4f})" for rule in ("distance", "margin"))
        print(f"gallery of {size} ({args.draws} draws, {100 * args.fpir:g} % strangers): {cells}")
    _write_json(args.json, out)
    return 0


def cmd_calibrate(args) -> int:
    import numpy as np

    from faceguard import evaluate as ev

    pipeline = _pipeline(args)
    split, es = _split_set(args, pipeline)
    # The same scoring rule the door would use for a gallery of this size.
    rule = args.rule if args.rule != "auto" else pipeline.embedder.spec.rule_for(len(split.gallery_paths))
    r = ev.calibrate(es, split, fpir=args.fpir, rule=rule)
    print(f"{rule} rule, threshold {r['threshold']:.4f}: strangers accepted {100 * r['fpir']:.2f} % "
          f"({r['strangers']} stranger searches of a gallery of {r['gallery']}; single-photo "
          f"people alone {100 * r['single_photo_fpir']:.1f} %), enrolled people missed "
          f"{100 * r['fnir']:.1f} % per frame, rank-1 {100 * r['rank1']:.1f} %")
    if args.plot:
        from faceguard.plot import distance_histograms

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
        r["threshold_curve"] = ev.threshold_curve(ev.impostor_distances(es, labels), args.fpir)
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
    _write_json(args.json, {k: v for k, v in r.items() if not k.endswith("scores")})
    return 0


# -- doctor ------------------------------------------------------------------------------------
def cmd_doctor(args) -> int:
    """What runs where: providers, model files and hashes, cameras."""
    import onnxruntime as ort

    from faceguard import paths
    from faceguard.vision.models import load_manifest, verify_file

    print(f"FaceGuard {__version__}, onnxruntime {ort.__version__}")
    print(f"onnxruntime providers available: {', '.join(ort.get_available_providers())}")
    manifest = load_manifest()
    print(f"models: {manifest.root}")
    ok = True
    for name in manifest.sha256:
        try:
            verify_file(manifest, manifest.root / name)
            print(f"  ok   {name}")
        except FaceGuardError as exc:
            ok = False
            print(f"  BAD  {exc}")
    if ok:
        pipeline = _pipeline(args)
        print(f"embedding model {pipeline.model_id} runs on: {pipeline.provider}")
    print(f"data: {paths.data_dir()}\nconfig: {paths.config_dir()}\nlog: {paths.log_file()}")
    if args.cameras:
        from faceguard.camera import list_cameras

        cams = list_cameras()
        print(f"cameras: {', '.join(map(str, cams)) if cams else 'none found'}")
    return 0 if ok else 1


# -- gui ---------------------------------------------------------------------------------------
def cmd_gui(args) -> int:
    from faceguard.ui.app import run

    return run(camera=getattr(args, "camera", None), fullscreen=getattr(args, "fullscreen", False))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="faceguard", description="Face-recognition door check.")
    ap.add_argument("--version", action="version", version=f"faceguard {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log to stderr too")
    sub = ap.add_subparsers(dest="command")

    p = sub.add_parser("gui", help="open the door-check window (the default)")
    p.add_argument("--camera", help="device index, stream URL or video file")
    p.add_argument("--fullscreen", action="store_true", help="kiosk mode (Esc asks for the PIN)")
    p.set_defaults(func=cmd_gui)

    p = sub.add_parser("embed", help="embed every image under a folder into an .npz")
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, required=True)
    add_engine_options(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("verify", help="are two photos the same person?")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--json", action="store_true")
    add_engine_options(p)
    p.set_defaults(func=cmd_verify)

    ev = sub.add_parser("eval", help="measure accuracy on a labelled photo set")
    evsub = ev.add_subparsers(dest="what", required=True)
    p = evsub.add_parser("pairs", help="verification accuracy on an LFW-format pairs file")
    p.add_argument("root", type=Path)
    p.add_argument("pairs", type=Path)
    p.add_argument("--json", type=Path, help="also write the numbers here")
    add_engine_options(p)
    p.set_defaults(func=cmd_eval_pairs)
    p = evsub.add_parser("identify", help="one-shot open-set identification")
    p.add_argument("root", type=Path)
    p.add_argument("split", type=Path, help="path<TAB>identity<TAB>role (gallery|probe)")
    p.add_argument("--fpir", type=float, default=0.01)
    p.add_argument("--gallery-size", type=lambda s: [int(x) for x in s.split(",")],
                   help="also random office-sized galleries, e.g. 20,100")
    p.add_argument("--draws", type=int, default=30)
    p.add_argument("--json", type=Path)
    add_engine_options(p)
    p.set_defaults(func=cmd_eval_identify)

    p = sub.add_parser("calibrate", help="choose the threshold for a stranger-accept rate")
    p.add_argument("root", type=Path)
    p.add_argument("split", type=Path)
    p.add_argument("--fpir", type=float, default=0.01)
    p.add_argument("--plot", type=Path, help="PNG with the distance histograms")
    p.add_argument("--save", action="store_true", help="store the threshold in the settings")
    p.add_argument("--rule", choices=("auto", "distance", "margin"), default="auto",
                   help="scoring rule (auto: the one the door uses for this gallery size)")
    p.add_argument("--curve", action="store_true",
                   help="also the per-gallery-size thresholds of both scoring rules")
    p.add_argument("--json", type=Path)
    add_engine_options(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("doctor", help="providers, model hashes, folders, cameras")
    p.add_argument("--cameras", action="store_true", help="also probe camera indices 0-5")
    add_engine_options(p)
    p.set_defaults(func=cmd_doctor)

    from faceguard import cli_bench, cli_door, cli_gallery

    cli_gallery.register(sub)
    cli_door.register(sub)
    cli_bench.register(sub)
    try:
        from faceguard.train import cli as cli_train  # defines the commands; torch loads later
    except ModuleNotFoundError as exc:
        if exc.name not in ("faceguard.train", "faceguard.train.cli"):
            raise
        return ap  # the packaged desktop app leaves training out
    cli_train.register(sub)
    return ap


def setup_logging(verbose: bool) -> None:
    from logging.handlers import RotatingFileHandler

    from faceguard import paths

    root = logging.getLogger()
    if root.handlers:
        return
    root.setLevel(logging.INFO)
    try:
        fh = RotatingFileHandler(paths.log_file(), maxBytes=2_000_000, backupCount=3)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)
    except OSError:
        pass  # an unwritable log folder must not stop the door check
    if verbose:
        root.addHandler(logging.StreamHandler(sys.stderr))


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    if not getattr(args, "func", None):  # plain `faceguard`: the door-check window
        args.func, args.camera, args.fullscreen = cmd_gui, None, False
    try:
        return int(args.func(args) or 0)
    except FaceGuardError as exc:
        log.error("%s", exc)
        print(f"faceguard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
