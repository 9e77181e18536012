"""Engine benchmark: accuracy on ../shared/data/lfw_dev_fold1 and speed on this machine,
FaceGuard side by side with face_recognition 1.3 (dlib) when it is installed.

    python benchmarks/engine.py [--out benchmarks/results/engine.json] [--runs 5] [--baseline REF]

--baseline REF also plays the door as of git REF (its vision/guided.py, the flip pass on every
face) in the same alternating rounds: the ratio to the previous version on one busy machine.

Install the reference for the comparison (it otherwise compiles dlib):
    pip install dlib-bin face_recognition_models Click Pillow "setuptools<81"
    pip install --no-deps face_recognition
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import warnings
from pathlib import Path

import cv2
import numpy as np
from stream import compare

from faceguard.camera import FrameSource
from faceguard.settings import Settings
from faceguard.tools import evaluate as ev
from faceguard.tools.progress import ProgressBar
from faceguard.tools.speed import embed_ms_per_face, frame_ms
from faceguard.vision.image import load_image
from faceguard.vision.main_face import main_face
from faceguard.vision.pipeline import FacePipeline

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
LFW = DATA / "lfw_dev_fold1"
VIDEO = DATA / "video" / "short_hamilton_clip.mp4"


def to_640x480(rgb: np.ndarray) -> np.ndarray:
    """Letterbox a frame into 640×480 (the issue's frame size) without changing its aspect."""
    h, w = rgb.shape[:2]
    f = min(640 / w, 480 / h)
    small = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    out = np.zeros((480, 640, 3), np.uint8)
    y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    out[y:y + small.shape[0], x:x + small.shape[1]] = small
    return out


def video_fps() -> float:
    capture = cv2.VideoCapture(str(VIDEO))
    try:
        return float(capture.get(cv2.CAP_PROP_FPS)) or 30.0
    finally:
        capture.release()


def video_frames(step: int = 3) -> list[np.ndarray]:
    frames = []
    with FrameSource(VIDEO) as src:
        while (f := src.read()) is not None:
            if f.index % step == 0:
                frames.append(to_640x480(f.rgb))
    return frames


def all_files():
    pairs = ev.read_pairs(LFW / "pairs_dev.txt")
    split = ev.read_split(LFW / "identification_split.tsv")
    labels = {r["path"]: r["identity"] for r in ev.read_tsv(LFW / "labels.tsv")}
    return pairs, split, labels, sorted(labels)


def accuracy(es: ev.EmbeddedSet, pairs, split, labels) -> dict:
    p = ev.evaluate_pairs(es, pairs)
    i = ev.evaluate_identification(es, split)
    t = ev.all_pairs_tar(es, labels, 1e-3)
    return {"pairs_accuracy": p["accuracy"], "pairs_accuracy_ci95": p["accuracy_ci95"],
            "pairs_tar_at_far_1e-3": p["tar_at_far_0.001"],
            "all_pairs_tar_at_far_1e-3": t["tar"], "rank1": i["rank1"],
            "fnir_at_fpir_1pct": i["fnir"], "faces_found": float(es.found.mean())}


def pairs_difference(ours: ev.EmbeddedSet, theirs: ev.EmbeddedSet, pairs) -> dict:
    """Our pairs accuracy minus theirs, with a paired bootstrap interval (same pairs resampled
    for both): whether 600 pairs can tell the two apart at all."""
    a = ev.kfold_correct(*ev.pair_distances(ours, pairs))[0].astype(float)
    b = ev.kfold_correct(*ev.pair_distances(theirs, pairs))[0].astype(float)
    return {"difference": float(np.mean(a - b)), "ci95": ev.bootstrap_ci(a - b),
            "only_ours_right": int(np.sum(a > b)), "only_theirs_right": int(np.sum(b > a))}


# -- face_recognition (dlib) reference --------------------------------------------------------
def load_face_recognition():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import face_recognition
        return face_recognition
    except Exception as exc:  # noqa: BLE001 (its models package needs pkg_resources; report, don't crash)
        print(f"face_recognition not available ({exc.__class__.__name__}: {exc}); reference skipped")
        return None


def fr_embed(fr, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    locs = fr.face_locations(rgb)
    found = bool(locs)
    if found:
        h, w = rgb.shape[:2]
        locs = [min(locs, key=lambda b: ((b[1] + b[3]) / 2 - w / 2) ** 2 + ((b[0] + b[2]) / 2 - h / 2) ** 2)]
    else:
        h, w = rgb.shape[:2]
        locs = [(h // 4, 3 * w // 4, 3 * h // 4, w // 4)]
    e = fr.face_encodings(rgb, locs)[0]
    return (e / np.linalg.norm(e)).astype(np.float32), found


def fr_embedded_set(fr, files) -> ev.EmbeddedSet:
    out = [fr_embed(fr, fr.load_image_file(str(LFW / f))) for f in files]
    return ev.EmbeddedSet(np.array(files), np.stack([e for e, _ in out]), np.array([f for _, f in out]))


# -- speed ------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "engine.json")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-reference", action="store_true", help="skip face_recognition")
    ap.add_argument("--speed-only", action="store_true", help="skip the accuracy part")
    ap.add_argument("--baseline", metavar="REF", help="also play the door as of this git commit")
    args = ap.parse_args()

    pairs, split, labels, files = all_files()
    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                 "threads": os.environ.get("FACEGUARD_THREADS", "auto")}}
    systems, sets = {}, {}
    for name, flip in () if args.speed_only else (("faceguard", True), ("faceguard_plain", False)):
        pipeline = FacePipeline.load("cpu", flip=flip)
        sets[name] = ev.embed_files(pipeline, LFW, files, progress=ProgressBar(f"embedding ({name})"))
        systems[name] = accuracy(sets[name], pairs, split, labels)
        systems[name]["provider"] = pipeline.provider
    fr = None if args.no_reference else load_face_recognition()
    if fr is not None and not args.speed_only:
        sets["face_recognition"] = fr_embedded_set(fr, files)
        systems["face_recognition"] = accuracy(sets["face_recognition"], pairs, split, labels)
    results["accuracy"] = systems
    if "face_recognition" in systems:
        results["pairs_difference_vs_face_recognition"] = pairs_difference(
            sets["faceguard"], sets["face_recognition"], pairs)

    pipeline = FacePipeline.load("cpu", flip=True)
    chips = []
    for f in files[:64]:
        rgb = cv2.cvtColor(cv2.imread(str(LFW / f)), cv2.COLOR_BGR2RGB)
        face = main_face(pipeline.detect(rgb), rgb.shape)
        if face is not None:
            chips.append(pipeline.align(rgb, face))
    chips = np.stack(chips)
    plain = FacePipeline.load("cpu", flip=False)
    frames = video_frames(step=1)      # the clip as a camera delivers it, frame after frame
    speed = {
        "embed_ms_per_face_batch16_plain": embed_ms_per_face(plain, chips, 16, args.runs),
        "embed_ms_per_face_batch16_flip": embed_ms_per_face(pipeline, chips, 16, args.runs),
    }
    settings = Settings()
    door = FacePipeline.load("cpu", flip=settings.flip_average)
    # The clip's singer enrolled (the shared photo), for the lazy door's flip pass
    lazy = settings.flip_average and settings.lazy_flip
    enrolled = door.process(load_image(VIDEO.with_name("lin-manuel-miranda.png")))[0].embedding
    stream = compare(pipeline, door, settings, frames, max(2, args.runs), baseline=args.baseline,
                     enrolled=enrolled if lazy else None, threshold=door.threshold_for(1),
                     fps=video_fps())
    speed.update(stream)
    speed["frame_ms_one_face_640x480_flip"] = stream["door_frame_ms_one_face"]
    if fr is not None:
        def fr_frame(rgb):
            locs = fr.face_locations(rgb)
            fr.face_encodings(rgb, locs)
            return len(locs)
        # face_recognition keeps nothing from frame to frame: every 3rd frame is enough
        sample = [frames[i] for i in range(0, len(frames), 3)]
        speed["face_recognition_frame_ms_one_face_640x480"] = statistics.median(frame_ms(fr_frame, sample))
        speed["ratio_frame_time_face_recognition_over_faceguard"] = (
            speed["face_recognition_frame_ms_one_face_640x480"] / speed["door_frame_ms_one_face"])
    results["speed"] = speed

    print(f"{'system':<18}{'pairs acc':>10}{'TAR@1e-3':>10}{'all TAR':>9}{'rank-1':>8}{'FNIR@1%':>9}{'found':>8}")
    for name, r in systems.items():
        print(f"{name:<18}{100 * r['pairs_accuracy']:>9.2f}%{100 * r['pairs_tar_at_far_1e-3']:>9.1f}%"
              f"{100 * r['all_pairs_tar_at_far_1e-3']:>8.1f}%{100 * r['rank1']:>7.1f}%"
              f"{100 * r['fnir_at_fpir_1pct']:>8.1f}%{100 * r['faces_found']:>7.1f}%")
    for name, r in systems.items():
        lo, hi = r["pairs_accuracy_ci95"]
        print(f"{name}: pairs accuracy 95 % interval {100 * lo:.2f}–{100 * hi:.2f} % (bootstrap over pairs)")
    if "pairs_difference_vs_face_recognition" in results:
        d = results["pairs_difference_vs_face_recognition"]
        print(f"faceguard − face_recognition, pairs accuracy: {100 * d['difference']:+.2f} points, 95 % interval "
              f"{100 * d['ci95'][0]:+.2f} to {100 * d['ci95'][1]:+.2f} ({d['only_ours_right']} pairs only we "
              f"judge right, {d['only_theirs_right']} only face_recognition)")
    for k, v in speed.items():
        print(f"{k:<52}{v:>10.2f}" if isinstance(v, float) else f"{k:<52}{v!s:>10}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
