"""UI soak and paint-rate benchmark: the door window over the shared clip (looping).

    QT_QPA_PLATFORM=offscreen python benchmarks/ui.py [--frames 5000] [--out artifacts/bench_ui.json]

Measures (1) resident memory (RSS) across `--frames` processed frames: the last reading must be
within 10 % of the reading after warm-up. Warm-up is two passes of the clip: onnxruntime grows
its buffers once for each new input shape (a scene with five faces embeds a batch of five), so
memory rises until every scene has been seen once and is flat after that (measured: 374 MB at
frame 200, 459 MB from frame 600 to 2,000); (2) the window's paint rate while inference runs: a
60 Hz repaint timer stands in for a screen, and the video widget must manage >= 20 paints/s.
Prints the numbers and writes JSON. With --doorcheck the whole door check runs (DoorCheck:
match, decide, access log with snapshots, banners and event rows) against a throw-away gallery
in a temporary data folder with Lin-Manuel Miranda enrolled from the shared photo; by default
each frame only goes through the real FacePipeline (detect + embed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--clip", default=str(REPO.parent / "shared/data/video/short_hamilton_clip.mp4"))
    ap.add_argument("--provider", default="auto")
    ap.add_argument("--doorcheck", action="store_true")
    ap.add_argument("--previous", action="store_true",
                    help="without --doorcheck: search every whole frame (before track-guided detection)")
    ap.add_argument("--photo-check", action="store_true", help="with --doorcheck: the photo check on")
    ap.add_argument("--no-lazy-flip", action="store_true",
                    help="with --doorcheck: the mirror pass on every face (before issue 25's lazy flip)")
    ap.add_argument("--out", default=str(REPO / "artifacts" / "bench_ui.json"))
    args = ap.parse_args()
    if args.doorcheck:
        # Never the user's gallery or settings: a private data/config folder for this run.
        import tempfile
        tmp = Path(tempfile.mkdtemp(prefix="faceguard-bench-"))
        for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            (tmp / var.lower()).mkdir()
            os.environ[var] = str(tmp / var.lower())

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from faceguard.camera import FrameSource
    from faceguard.settings import Settings
    from faceguard.ui.app import load_style
    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.sounds import SoundPlayer
    from faceguard.vision.pipeline import FacePipeline

    app = QApplication.instance() or QApplication([])
    load_style(app)
    pipeline = FacePipeline.load(args.provider)
    settings = Settings(camera=args.clip, loop_video=True, photo_check=args.photo_check,
                        lazy_flip=not args.no_lazy_flip)

    class PipelineOnly:
        gallery_empty = False
        damaged: dict[str, str] = {}     # the window names people whose face data is damaged
        # the door's stream detection (settings' interval and smallest face), unless --previous
        guide = None if args.previous else pipeline.guided(settings.full_detect_every, settings.min_face_px)

        def process(self, frame):
            from faceguard.doorcheck import FaceReport, FrameReport
            results = (pipeline.process(frame.rgb) if self.guide is None
                       else pipeline.process(frame.rgb, guide=self.guide))
            faces = [FaceReport(box=tuple(float(v) for v in r.box), landmarks=r.landmarks, name=None,
                                employee_id=None, distance=1.0, threshold=0.0, state="looking",
                                status="", explanation="") for r in results]
            return FrameReport(frame, faces, [], 0.0)

        def close(self, timeout=None):
            return []

    make_check = None if args.doorcheck else PipelineOnly
    gallery = None
    if args.doorcheck:
        from faceguard.gallery.enrol import enrol
        from faceguard.gallery.store import Gallery
        from faceguard.vision.image import load_image
        gallery = Gallery.open()
        photo = Path(args.clip).with_name("lin-manuel-miranda.png")
        enrol(gallery, pipeline, load_image(photo), "Lin-Manuel Miranda", "E-0001", consent=True,
              threshold=pipeline.threshold_for(1, None))
    # Every frame of the file, as fast as inference allows (realtime=False): the soak covers
    # `--frames` processed frames in the shortest time.
    w = DoorWindow(settings, pipeline, gallery, make_check=make_check,
                   open_source=lambda: FrameSource(args.clip, loop=True).open(),
                   sounds=SoundPlayer(enabled=False), save=False)
    w.resize(1280, 760)
    w.show()
    screen = QTimer(interval=16)              # a 60 Hz display asking for repaints
    screen.timeout.connect(w.video.update)
    screen.start()
    w.start()

    import cv2
    clip_frames = int(cv2.VideoCapture(args.clip).get(cv2.CAP_PROP_FRAME_COUNT)) or 200
    warm = -(-2 * clip_frames // 200) * 200    # two passes, rounded up to a sampling step
    samples: list[tuple[int, float]] = []
    paint_rates: list[float] = []
    t0 = time.monotonic()
    next_sample = 200
    while w.controller.running and w.controller.frames < args.frames:
        app.processEvents()
        time.sleep(0.002)
        n = w.controller.frames
        if n >= next_sample:
            samples.append((n, rss_mb()))
            paint_rates.append(w.video.paint_meter.rate)
            next_sample += 200
            print(f"frames {n:5d}  RSS {samples[-1][1]:7.1f} MB  paint {paint_rates[-1]:5.1f}/s", flush=True)
    elapsed = time.monotonic() - t0
    frames = w.controller.frames
    w.stop()
    warmed = [s for s in samples if s[0] >= warm] or samples[-1:]
    base, last = warmed[0][1], samples[-1][1]
    growth = (last - base) / base
    result = {
        "frames": frames, "seconds": round(elapsed, 1), "inference_fps": round(frames / elapsed, 2),
        "provider": pipeline.provider,
        "detection": "doorcheck" if args.doorcheck else ("previous" if args.previous else "guided"),
        "lazy_flip": settings.lazy_flip,
        "rss_mb_first_sample": round(samples[0][1], 1),
        "warmup_frames": warm, "rss_mb_after_warmup": round(base, 1), "rss_mb_end": round(last, 1),
        "rss_mb_max": round(max(s[1] for s in samples), 1), "rss_growth": round(growth, 4),
        "paint_fps_min": round(min(paint_rates), 1), "paint_fps_median": round(sorted(paint_rates)[len(paint_rates) // 2], 1),
        "decisions_shown": {k: sum(1 for d in w.decisions if d.kind == k) for k in ("GRANTED", "DENIED")},
        "rss_flat_within_10pct": abs(growth) <= 0.10, "paint_at_least_20fps": min(paint_rates) >= 20.0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["rss_flat_within_10pct"] and result["paint_at_least_20fps"] else 1


if __name__ == "__main__":
    sys.exit(main())
