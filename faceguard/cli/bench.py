"""`faceguard bench`: how fast FaceGuard runs on this machine (and whether the GPU is used).

    faceguard bench                          embedding speed on the configured provider
    faceguard bench --camera 0 --frames 60   plus the whole-frame time on your camera's frames
    faceguard bench --provider cuda --batch 256

Prints the provider that really ran, ms per face and faces per second for the embedding, and,
with a camera or video, the median and 95th-percentile time per frame (detect, align, embed).
"""

from __future__ import annotations

from faceguard.cli import common
from faceguard.cli.common import CAMERA, ENGINE, JSON_FILE, command


def cmd_bench(args) -> int:
    import numpy as np

    from faceguard.camera import FrameSource
    from faceguard.errors import FaceGuardError
    from faceguard.tools.speed import embed_ms_per_face, frame_ms, noise_chips

    if args.camera is None:
        common.refuse(args, {"frames": "--frames"}, "counts camera frames: it needs --camera")
    n_frames = 60 if args.frames is None else args.frames
    if args.batch < 1 or args.runs < 1 or n_frames < 1:
        raise FaceGuardError("--batch, --runs and --frames must be at least 1.")
    if args.batch > 4096:      # 10^8 would allocate terabytes of face chips
        raise FaceGuardError("--batch must be at most 4096.")
    pipeline = common.load_pipeline(args)
    out: dict = {"provider": pipeline.provider, "model": pipeline.model_id, "batch": args.batch}
    frames, chips = [], []
    if args.camera is not None:
        with FrameSource(args.camera) as src:
            while len(frames) < n_frames and (frame := src.read()) is not None:
                frames.append(frame.rgb)
        if not frames:
            raise FaceGuardError(f"No frames came from {args.camera}.")

    def process(rgb) -> int:
        results = pipeline.process(rgb)
        chips.extend(r.chip for r in results)   # real faces for the embedding timing below
        return len(results)

    if frames:
        times = frame_ms(process, frames, faces=None)
        out.update(frames=len(frames), faces=len(chips), frame_ms_median=float(np.median(times)),
                   frame_ms_p95=float(np.percentile(times, 95)))
    size = pipeline.chip_size
    # Real chips when the frames had faces; the network's speed does not depend on content.
    sample = np.stack(chips) if chips else noise_chips(min(args.batch, 64), size)
    per_face = embed_ms_per_face(pipeline, sample, args.batch, args.runs)
    out.update(embed_ms_per_face=per_face, faces_per_second=1000.0 / per_face)
    print(f"runs on: {out['provider']} ({out['model']})")
    print(f"embedding: {per_face:.2f} ms per face at batch {args.batch} = {out['faces_per_second']:.0f} faces/s"
          f"{' (flip averaging: two passes per face)' if pipeline.embedder.flip else ''}")
    if frames:
        print(f"whole frame (detect, align, embed): median {out['frame_ms_median']:.1f} ms, 95th percentile "
              f"{out['frame_ms_p95']:.1f} ms over {out['frames']} frames ({out['faces']} faces)")
    common.write_json(args.json, out)
    return 0


def register(sub) -> None:
    p = command(sub, "bench", cmd_bench, parents=[CAMERA, ENGINE, JSON_FILE],
                help="how fast FaceGuard runs here (embedding; with --camera, whole frames)")
    p.add_argument("--frames", type=int, default=None, help="frames to time (with --camera; default 60)")
    p.add_argument("--batch", type=int, default=16, help="faces per embedding batch (1 to 4096)")
    p.add_argument("--runs", type=int, default=5, help="timed embedding batches (median kept)")
