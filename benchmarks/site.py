"""Several doors, one site: how fast a gallery reaches the doors, and whether the log keeps every
event through an outage. A throw-away PostgreSQL on this machine (loopback only, fsync on).

1. receive: a new door joins a site of N people (LFW photos, cycled; random unit embeddings:
   the transport is measured, not recognition) — seconds until its replica holds all of them.
2. delay: enrolment committed at the site (what door A's `enroll` does) → door B's running
   watcher has applied it and its matcher can be rebuilt (grant-ready): median, p95.
3. load: D doors (threads in one process, each its own data folder, SQLite and watcher) log
   R events/s each for S seconds; PostgreSQL is stopped for a while in the middle. Then every
   door's log is compared with the site's: lost, duplicated, and the delay from the local write
   to the site (p95, outside the outage and overall).
4. frame time: the door check on the shared clip with its site watcher running as a door runs
   it, site up vs site down (connection refused), in alternating rounds; median, p95 ms.

    python benchmarks/site.py [--people 1000] [--doors 10] [--rate 2] [--seconds 300]
                              [--outage 30] [--parts receive,delay,load,frames]
                              [--out benchmarks/results/site.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's faceguard first
from pgcluster import Cluster  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PARTS = ("receive", "delay", "load", "frames")


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, float), q)) if values else float("nan")


class DoorDirs:
    """Point platformdirs at one door's folders (paths.* read the environment on each call)."""

    def __init__(self, root: Path):
        self.root = root

    def __enter__(self):
        for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
            os.environ[var] = str(self.root / var.lower())
        return self

    def __exit__(self, *exc):
        return False


def new_door(root: Path, url: str, code: str, name: str):
    """(Gallery, SiteConfig) of a freshly joined door."""
    from faceguard.gallery.store import Gallery
    from faceguard.site.config import SiteConfig
    from faceguard.site.joining import join

    with DoorDirs(root):
        gallery = Gallery.open()
        t0 = time.perf_counter()
        join(url, code, name, gallery)
        return gallery, SiteConfig.load(), time.perf_counter() - t0


def fill_site(url: str, key: bytes, n: int, model_id: str) -> None:
    import cv2

    from faceguard.gallery import crypto
    from faceguard.gallery.db import encode_jpeg
    from faceguard.site.store import SiteStore

    cipher = crypto.Cipher(key)
    images = sorted((DATA / "lfw_dev_fold1" / "images").rglob("*.jpg"))
    photos = [cipher.encrypt(encode_jpeg(cv2.imread(str(p))[:, :, ::-1], 1024), crypto.PHOTO)
              for p in images[:min(n, len(images))]]
    rng = np.random.default_rng(0)
    with SiteStore.connect(url) as store:
        for i in range(n):
            v = rng.normal(size=128).astype(np.float32)
            v /= np.linalg.norm(v)
            store.add_person("bench", f"Person {i}", f"P{i:05d}", photos[i % len(photos)],
                             cipher.encrypt(v.tobytes(), crypto.EMBEDDING), model_id, time.time())


def bench_receive(cluster: Cluster, tmp: Path, n: int) -> dict:
    from faceguard.site.replica import door_model_id
    from faceguard.site.store import SiteStore

    url = cluster.createdb("receive")
    with SiteStore.connect(url) as store:
        code, key = store.create()
    fill_site(url, key, n, door_model_id())
    gallery, _, seconds = new_door(tmp / "receive", url, code, "new")
    people = len(gallery)
    gallery.close()
    print(f"receive: a new door got {people} people in {seconds:.1f} s ({people / seconds:.0f} people/s)")
    return {"people": people, "seconds": round(seconds, 2)}


def bench_delay(cluster: Cluster, tmp: Path, trials: int) -> dict:
    import cv2

    from faceguard.gallery import crypto
    from faceguard.gallery.db import encode_jpeg
    from faceguard.site.replica import door_model_id
    from faceguard.site.store import SiteStore
    from faceguard.site.watch import SiteWatcher

    url = cluster.createdb("delay")
    with SiteStore.connect(url) as store:
        code, key = store.create()
    gallery, config, _ = new_door(tmp / "delay", url, code, "B")
    watcher = SiteWatcher(gallery, config, interval=10).start()
    cipher = crypto.Cipher(key)
    photo = cipher.encrypt(encode_jpeg(cv2.imread(str(DATA / "video" / "lin-manuel-miranda.png"))[:, :, ::-1],
                                       1024), crypto.PHOTO)
    mid = door_model_id()
    delays = []
    time.sleep(1.0)     # the listener is up after the first sync
    try:
        with SiteStore.connect(url) as store:
            for i in range(trials):
                v = np.zeros(128, np.float32)
                v[i % 128] = 1
                t0 = time.perf_counter()
                store.add_person("A", f"New {i}", f"N{i:03d}", photo,
                                 cipher.encrypt(v.tobytes(), crypto.EMBEDDING), mid, time.time())
                while not watcher.take_changed() and time.perf_counter() - t0 < 30:
                    time.sleep(0.002)
                ids, _ = gallery.embeddings(mid)    # what the door's matcher is rebuilt from
                assert f"N{i:03d}" in ids
                delays.append(time.perf_counter() - t0)
                time.sleep(0.2)
    finally:
        watcher.stop(flush_timeout=0)
        gallery.close()
    out = {"trials": trials, "median_s": round(statistics.median(delays), 3), "p95_s": round(pct(delays, 95), 3)}
    print(f"delay enrol at A → grant-ready at B: median {out['median_s']:.3f} s, p95 {out['p95_s']:.3f} s "
          f"({trials} enrolments)")
    return out


def bench_load(cluster: Cluster, tmp: Path, doors: int, rate: float, seconds: float, outage: float) -> dict:
    import psycopg

    from faceguard.gallery.events import EventLog
    from faceguard.site.store import SiteStore
    from faceguard.site.watch import SiteWatcher

    url = cluster.createdb("load")
    with SiteStore.connect(url) as store:
        code, _ = store.create()
    fleet = []
    for d in range(doors):
        gallery, config, _ = new_door(tmp / f"load{d}", url, code, f"door{d}")
        fleet.append((gallery, SiteWatcher(gallery, config, interval=10).start()))
    stop = threading.Event()
    written = [0] * doors

    def writer(d: int, gallery) -> None:
        log = EventLog(gallery)
        period = 1.0 / rate
        nxt = time.monotonic()
        while not stop.is_set():
            log.log_event("DENIED", reason="load test", distance=0.5, threshold=0.2)
            written[d] += 1
            nxt += period
            stop.wait(max(0.0, nxt - time.monotonic()))

    threads = [threading.Thread(target=writer, args=(d, g), daemon=True) for d, (g, _) in enumerate(fleet)]
    t_start = time.time()
    for t in threads:
        t.start()
    down_at = t_start + (seconds - outage) / 2
    time.sleep(max(0.0, down_at - time.time()))
    cluster.stop()
    t_down = time.time()
    time.sleep(outage)
    cluster.start()
    t_up = time.time()
    time.sleep(max(0.0, t_start + seconds - time.time()))
    stop.set()
    for t in threads:
        t.join()
    for _, watcher in fleet:
        watcher.stop(flush_timeout=10)
    time.sleep(0.5)
    lost = dup = 0
    delays, delays_up = [], []
    with psycopg.connect(url) as conn:
        for d, (gallery, _) in enumerate(fleet):
            with gallery.db.reading() as con:
                local = {r[0]: r[1] for r in con.execute("SELECT id, time FROM events")}
            rows = conn.execute("SELECT local_id, COUNT(*), MIN(received) FROM events WHERE door=%s "
                                "GROUP BY local_id", (f"door{d}",)).fetchall()
            at_site = {r[0]: r[2] for r in rows}
            lost += len(set(local) - set(at_site))
            dup += sum(r[1] - 1 for r in rows)
            for eid, received in at_site.items():
                if eid in local:
                    delay = received - local[eid]
                    delays.append(delay)
                    # "site up": not logged while it was down or before the doors' catch-up
                    # timer (10 s) had found it back
                    if not (t_down - 1 <= local[eid] <= t_up + 12):
                        delays_up.append(delay)
            gallery.close()
    total = sum(written)
    out = {"doors": doors, "events_per_s_per_door": rate, "seconds": seconds, "outage_s": round(t_up - t_down, 1),
           "events": total, "lost": lost, "duplicated": dup,
           "p95_delay_s_site_up": round(pct(delays_up, 95), 3), "median_delay_s_site_up": round(pct(delays_up, 50), 3),
           "p95_delay_s_overall": round(pct(delays, 95), 3), "max_delay_s": round(max(delays), 3) if delays else None}
    print(f"load: {doors} doors × {rate:g} events/s for {seconds:g} s with a {out['outage_s']:g} s outage: "
          f"{total} events, lost {lost}, duplicated {dup}; delay to the site p95 {out['p95_delay_s_site_up']:.2f} s "
          f"(site up), {out['p95_delay_s_overall']:.2f} s overall, max {out['max_delay_s']:.1f} s")
    return out


def bench_frames(cluster: Cluster, tmp: Path, frames: int, rounds: int) -> dict:
    from faceguard.camera import FrameSource
    from faceguard.doorcheck import DoorCheck
    from faceguard.gallery.enrol import enrol
    from faceguard.settings import Settings
    from faceguard.site.replica import SiteGallery
    from faceguard.site.store import SiteStore
    from faceguard.site.watch import SiteWatcher
    from faceguard.vision.image import load_image
    from faceguard.vision.pipeline import FacePipeline

    url = cluster.createdb("frames")
    with SiteStore.connect(url) as store:
        code, _ = store.create()
    gallery, config, _ = new_door(tmp / "frames", url, code, "front")
    pipeline = FacePipeline.load("cpu")
    enrol(SiteGallery(gallery.db, config), pipeline, load_image(DATA / "video" / "lin-manuel-miranda.png"),
          "Lin-Manuel Miranda", "E001", consent=True)
    clip = []
    with FrameSource(str(DATA / "video" / "short_hamilton_clip.mp4"), realtime=False) as src:
        while len(clip) < frames:
            f = src.read()
            if f is None:
                if src.status == "ended":
                    break
                continue
            clip.append(f)
    settings = Settings()
    settings.photo_check = False
    warm = DoorCheck(pipeline, gallery, settings, seed=0)
    for f in clip[:20]:
        warm.process(f)
    warm.close()
    times: dict[str, list[float]] = {"up": [], "down": []}
    syncs = {"up": 0, "down": 0}
    # Alternate the two conditions so that warm-up and other load on the machine hit both alike.
    for _ in range(rounds):
        for label in ("up", "down"):
            if label == "down":
                cluster.stop()
            watcher = SiteWatcher(gallery, config).start()   # the door's own settings (10 s)
            check = DoorCheck(pipeline, gallery, settings, seed=0)
            for f in clip:
                if watcher.take_changed():
                    check.reload_gallery()
                t0 = time.perf_counter()
                check.process(f)
                times[label].append((time.perf_counter() - t0) * 1000)
            check.close()
            watcher.stop(flush_timeout=2)
            syncs[label] += watcher.syncs
            if label == "down":
                cluster.start()
    out = {label: {"frames": len(t), "median_ms": round(statistics.median(t), 2),
                   "p95_ms": round(pct(t, 95), 2), "successful_syncs": syncs[label]}
           for label, t in times.items()}
    gallery.close()
    print(f"frame time with the site up: median {out['up']['median_ms']:.1f} ms, p95 {out['up']['p95_ms']:.1f} ms; "
          f"down: median {out['down']['median_ms']:.1f} ms, p95 {out['down']['p95_ms']:.1f} ms "
          f"({out['up']['frames']} frames each, {rounds} alternating rounds)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--doors", type=int, default=10)
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--outage", type=float, default=30.0)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", default=",".join(PARTS), help="which of " + ",".join(PARTS))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "site.json")
    args = ap.parse_args()
    os.environ.setdefault("FACEGUARD_THREADS", "2")
    logging.basicConfig(level=logging.ERROR)   # the outage's warnings are expected
    tmp = Path(tempfile.mkdtemp(prefix="faceguard-site-bench-"))
    cluster = Cluster(fsync=True)
    cluster.start()
    parts = {p.strip() for p in args.parts.split(",")}
    # --parts runs some of the four; the others keep their numbers from an earlier run.
    results = json.loads(args.out.read_text()) if args.out.exists() and parts != set(PARTS) else {}
    results["machine"] = {"cpus": os.cpu_count(), "postgresql": str(cluster.bin)}
    try:
        if "receive" in parts:
            results["receive"] = bench_receive(cluster, tmp, args.people)
        if "delay" in parts:
            results["delay"] = bench_delay(cluster, tmp, args.trials)
        if "load" in parts:
            results["load"] = bench_load(cluster, tmp, args.doors, args.rate, args.seconds, args.outage)
        if "frames" in parts:
            results["frame_time"] = bench_frames(cluster, tmp, args.frames, args.rounds)
    finally:
        cluster.destroy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
