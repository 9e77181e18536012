"""Shared test set-up: private data/config dirs, offscreen Qt, the real data and models."""

from __future__ import annotations

import atexit
import hashlib
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

# Before anything imports Qt or platformdirs: no screen, and no test touches the user's files.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_runtime = Path(tempfile.mkdtemp(prefix="faceguard-xdg-runtime-"))
_runtime.chmod(0o700)
atexit.register(shutil.rmtree, _runtime, ignore_errors=True)
os.environ["XDG_RUNTIME_DIR"] = str(_runtime)
os.environ.setdefault("FACEGUARD_THREADS", "2")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
SHOTS = REPO / "artifacts" / "screenshots"
CLIP = "short_hamilton_clip.mp4"     # the shared clip, in SHARED_DATA / "video"


# -- helpers shared by several test modules (import them with `from conftest import ...`:
# pytest puts tests/ on sys.path for its rootdir conftest, under `pytest` and `python -m pytest`)

def tool(name: str) -> str:
    """A command-line tool installed beside this Python (the virtualenv's bin/ or Scripts/),
    so that tests find it in an unactivated virtualenv, where it is not on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed beside {sys.executable}: pip install -e '.[dev]'")
    return found


NAMES = {"E1": "Ana", "E2": "Bob", "E3": "Cid"}


def mr(pid: str | None, d: float = math.inf, thr: float = 0.4):
    """A MatchResult whose nearest person is ``pid`` at distance ``d`` (None: empty gallery)."""
    from faceguard.gallery.match import MatchResult

    return MatchResult(
        index=None if pid is None else int(pid[1:]) - 1, id=pid, name=NAMES.get(pid), distance=d,
        runner_up_index=None, runner_up_id=None, runner_up_distance=math.inf, score=d,
        threshold=thr, rule="distance", accepted=pid is not None and d <= thr)


def screenshot(widget, name: str) -> np.ndarray:
    """Save widget.grab() under artifacts/screenshots and fail if it is blank."""
    from PySide6.QtGui import QImage
    SHOTS.mkdir(parents=True, exist_ok=True)
    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    path = SHOTS / f"{name}.png"
    assert img.save(str(path)), path
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
    arr = arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3)
    assert img.width() > 200 and img.height() > 150
    assert float(arr.std()) > 10.0, f"{name} looks blank (pixel std {arr.std():.1f})"
    return arr


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    """Every test gets its own data, config, state and cache folders."""
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        d = tmp_path / var.lower()
        d.mkdir()
        monkeypatch.setenv(var, str(d))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "lfw_dev_fold1").is_dir():
        pytest.fail(f"The shared test data is missing: expected it at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def lfw(shared_data) -> Path:
    return shared_data / "lfw_dev_fold1"


@pytest.fixture(scope="session")
def split(lfw) -> dict[str, dict[str, list[str]]]:
    """identity → {"gallery": [paths], "probe": [paths]} from identification_split.tsv."""
    out: dict[str, dict[str, list[str]]] = {}
    for line in (lfw / "identification_split.tsv").read_text().splitlines()[1:]:
        path, identity, role = line.split("\t")
        out.setdefault(identity, {"gallery": [], "probe": []})[role].append(path)
    return out


@pytest.fixture
def gallery():
    """A real gallery in the test's own data folder."""
    from faceguard.gallery.store import Gallery

    g = Gallery.open()
    yield g
    g.close()


@pytest.fixture
def styled(qapp):
    """The app's style sheet on the test's QApplication (screenshots look as users see them)."""
    from faceguard.ui.app import load_style

    load_style(qapp)


@pytest.fixture(scope="session")
def pipeline():
    """The real shipped models through onnxruntime (CPU), loaded once per test session."""
    from faceguard.vision.pipeline import FacePipeline

    return FacePipeline.load(provider="cpu")


def _onnx_sources(graph) -> list[list]:
    """For each node in order, where each of its inputs comes from: ("input", k), ("node", i, j)
    for output j of node i, ("init", NAME-or-None, array) for a weight (None where the exporter
    made the name up, like "onnx::PRelu_47"), or ("absent",) for an empty optional input."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    where = {v.name: ("input", k) for k, v in enumerate(graph.input) if v.name not in inits}
    for i, node in enumerate(graph.node):
        for j, out in enumerate(node.output):
            where[out] = ("node", i, j)
    sources = []
    for node in graph.node:
        row = []
        for name in node.input:
            if not name:
                row.append(("absent",))
            elif name in inits:
                stable = None if name.startswith("onnx::") else name
                row.append(("init", stable, numpy_helper.to_array(inits[name])))
            else:
                row.append(where[name])
        sources.append(row)
    return sources


def _onnx_attributes(node) -> dict:
    from onnx import helper, numpy_helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = numpy_helper.to_array(v) if hasattr(v, "raw_data") else v
    return out


def _io(values) -> list:
    """Names, element types and dims of graph inputs or outputs (a symbolic dim counts as None:
    its name is the exporter's choice)."""
    return [(v.name, v.type.tensor_type.elem_type,
             [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim])
            for v in values]


def assert_same_onnx(got: Path, want: Path, atol: float = 1e-6) -> None:
    """Two ONNX files hold the same network: the same inputs and outputs, opset, op types in
    order with their attributes, wired the same way, and the same weights (names where the
    network gave them, shapes, values within atol). Unlike a byte comparison, this holds across
    torch versions, whose exporters name intermediate tensors and lay out protobufs their own way."""
    import onnx

    a, b = onnx.load(str(got)), onnx.load(str(want))
    label = f"{Path(got).name} vs {Path(want).name}"
    assert _io(a.graph.input) == _io(b.graph.input), f"{label}: graph inputs differ"
    assert _io(a.graph.output) == _io(b.graph.output), f"{label}: graph outputs differ"
    opset = lambda m: {o.domain or "ai.onnx": o.version for o in m.opset_import}  # noqa: E731
    assert opset(a) == opset(b), f"{label}: opsets differ"
    ops_a, ops_b = [n.op_type for n in a.graph.node], [n.op_type for n in b.graph.node]
    assert ops_a == ops_b, f"{label}: op types differ: {ops_a} vs {ops_b}"
    src_a, src_b = _onnx_sources(a.graph), _onnx_sources(b.graph)
    for i, (na, nb) in enumerate(zip(a.graph.node, b.graph.node, strict=True)):
        where = f"{label}: node {i} ({na.op_type})"
        att_a, att_b = _onnx_attributes(na), _onnx_attributes(nb)
        assert sorted(att_a) == sorted(att_b), f"{where}: attributes {sorted(att_a)} vs {sorted(att_b)}"
        for key, va in att_a.items():
            if isinstance(va, np.ndarray):
                np.testing.assert_allclose(va, att_b[key], atol=atol, rtol=0, err_msg=f"{where}: {key}")
            else:
                assert va == att_b[key], f"{where}: attribute {key} is {va!r}, want {att_b[key]!r}"
        assert len(src_a[i]) == len(src_b[i]), f"{where}: number of inputs"
        for j, (sa, sb) in enumerate(zip(src_a[i], src_b[i], strict=True)):
            assert sa[0] == sb[0], f"{where}: input {j} comes from {sa[:2]} vs {sb[:2]}"
            if sa[0] != "init":
                assert sa == sb, f"{where}: input {j} comes from {sa} vs {sb}"
                continue
            assert sa[1] == sb[1], f"{where}: weight name {sa[1]!r} vs {sb[1]!r}"
            assert sa[2].shape == sb[2].shape, f"{where}: weight {sa[1]} shape {sa[2].shape} vs {sb[2].shape}"
            assert sa[2].dtype == sb[2].dtype, f"{where}: weight {sa[1]} dtype {sa[2].dtype} vs {sb[2].dtype}"
            np.testing.assert_allclose(sa[2], sb[2], atol=atol, rtol=0,
                                       err_msg=f"{where}: weight {sa[1]} (input {j})")
    names = lambda m: sorted(t.name for t in m.graph.initializer if not t.name.startswith("onnx::"))  # noqa: E731
    assert names(a) == names(b), f"{label}: named weights differ"


def _frame_key(rgb: np.ndarray) -> bytes:
    return hashlib.blake2b(rgb.tobytes(), digest_size=16, person=str(rgb.shape).encode()[:16]).digest()


@dataclass(frozen=True)
class ClipFrame:
    """One frame of the shared clip and what the real pipeline found in it."""

    index: int
    t: float               # seconds into the clip, as FrameSource stamps the frame
    results: tuple         # FaceResult, ..., as FacePipeline.process returns them
    key: bytes = field(repr=False)   # digest of the decoded pixels


@pytest.fixture(scope="session")
def clip_results(shared_data, pipeline) -> list[ClipFrame]:
    """The whole shared clip, decoded and run through detect → align → embed once per test
    session (about 10 s on 2 cores). Read-only: the arrays cannot be written."""
    from faceguard.camera import FrameSource

    frames = []
    with FrameSource(shared_data / "video" / CLIP) as src:
        while (frame := src.read()) is not None:
            results = tuple(pipeline.process(frame.rgb))
            for r in results:
                for a in (r.face.box, r.face.landmarks, r.chip, r.embedding):
                    a.setflags(write=False)
            frames.append(ClipFrame(frame.index, frame.t, results, _frame_key(frame.rgb)))
    assert len(frames) > 100, f"only {len(frames)} frames decoded from {CLIP}"
    return frames


class ClipPipeline:
    """The session's FacePipeline, except that a frame of the shared clip (the same pixels)
    gets the results clip_results already has instead of being detected and embedded again.
    Any other image goes to the real pipeline. ``hits`` counts the frames served from the clip."""

    def __init__(self, pipeline, frames: list[ClipFrame]):
        self._pipeline = pipeline
        self._by_key = {f.key: f.results for f in frames}
        self.hits = 0

    def process(self, rgb: np.ndarray, max_faces: int | None = None) -> list:
        results = self._by_key.get(_frame_key(rgb))
        if results is None:
            return self._pipeline.process(rgb, max_faces)
        self.hits += 1
        return list(results[:max_faces])

    def __getattr__(self, name):          # model id, thresholds, embedder, ...: the real ones
        return getattr(self._pipeline, name)


@pytest.fixture(scope="session")
def clip_pipeline(pipeline, clip_results) -> ClipPipeline:
    """For tests that play the shared clip through FrameSource and DoorCheck for what the door
    decides: the camera interface and the door check run for real, the face results come from
    clip_results (computed once per session)."""
    return ClipPipeline(pipeline, clip_results)


@pytest.fixture(scope="session")
def print_attack_video(shared_data, tmp_path_factory) -> Path:
    """4 s of the enrolment portrait printed and waved ±25° in front of a 30 fps webcam, as a
    video file (benchmarks/photo_attack.py renders it)."""
    import sys

    import cv2

    from faceguard.vision.image import load_image

    sys.path.insert(0, str(REPO / "benchmarks"))
    from photo_attack import waved

    photo = load_image(shared_data / "video" / "lin-manuel-miranda.png")
    path = tmp_path_factory.mktemp("attack") / "print_attack.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for rgb in waved(photo, 120, yaw=25, pitch=15, distance_m=0.45):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture
def lin_enrolled(shared_data, pipeline) -> str:
    """Lin-Manuel Miranda enrolled from the clip's enrolment photo, as employee E001."""
    from faceguard.gallery.enrol import enrol
    from faceguard.gallery.store import Gallery
    from faceguard.vision.image import load_image

    with Gallery.open() as gallery:
        rgb = load_image(shared_data / "video" / "lin-manuel-miranda.png")
        enrol(gallery, pipeline, rgb, "Lin-Manuel Miranda", "E001", consent=True,
              threshold=pipeline.threshold_for(1))
    return "E001"


# -- helpers shared by the window and gallery tests (import them: `from conftest import …`) --
class FakeCapture:
    """A camera that delivers gray frames until `plug['in']` is False, like a pulled USB cable."""

    def __init__(self, plug):
        self.plug = plug
        self.opened = plug["in"]

    def isOpened(self):  # noqa: N802 (OpenCV name)
        return self.opened

    def read(self):
        if not self.plug["in"]:
            return False, None
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:, :80] = 200
        return True, frame

    def get(self, prop):
        return 30.0

    def set(self, prop, value):
        return True

    def release(self):
        self.opened = False


class NoFaces:
    """A door check that sees nobody (the camera tests need no models)."""

    gallery_empty = False

    damaged: dict = {}

    def process(self, frame):
        from faceguard.doorcheck import FrameReport
        return FrameReport(frame, [], [], 1.0)

    def close(self, timeout=None):
        return []



def fake_window(qtbot, plug, **kw):
    from types import SimpleNamespace

    from faceguard.camera import FrameSource
    from faceguard.settings import Settings
    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.sounds import SoundPlayer
    opened = lambda: FrameSource("fake://door-camera", reconnect_s=0.05,  # noqa: E731
                                 open_capture=lambda src: FakeCapture(plug)).open()
    w = DoorWindow(Settings(camera="fake://door-camera"), SimpleNamespace(provider="CPU"), None,
                   make_check=kw.pop("make_check", NoFaces), open_source=kw.pop("open_source", opened),
                   sounds=kw.pop("sounds", None) or SoundPlayer(enabled=False), save=False, **kw)
    qtbot.addWidget(w)
    w.show()
    return w



def photo(lfw, split, who, role="gallery", i=0):
    return lfw / split[who][role][i]


def blurred(path, tmp_path):
    import cv2

    from faceguard.vision.image import load_image
    rgb = load_image(path)
    out = tmp_path / f"blurred_{path.name}"
    cv2.imwrite(str(out), cv2.GaussianBlur(rgb[:, :, ::-1], (0, 0), 3))
    return out



def dev_people(split, n):
    return sorted(who for who, roles in split.items() if roles.get("gallery"))[:n]


@pytest.fixture(scope="session")
def postgres_server():
    """A throw-away PostgreSQL cluster (benchmarks/pgcluster, trust auth for `postgres`) for the
    tests outside test_site.py that need a real server; stopped and deleted at the end."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from pgcluster import Cluster, pg_bin
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed (apt-get install -y postgresql); these tests "
                    "need a real server")
    server = Cluster()
    server.start()
    yield server
    server.destroy()


# -- waiting on events, not on the PC's speed (issue 24 item 10) ----------------------------
def every_frame(path):
    """`open_source` for a DoorWindow that reads a video file frame by frame, each frame
    stamped with its time in the clip: the door decides the same on a busy PC (the window's
    default plays a file like a camera, dropping frames and judging on the wall clock)."""
    from faceguard.camera import FrameSource
    return lambda: FrameSource(str(path)).open()


def record_banners(window) -> list:
    """Every BannerView the window paints, in order: a prompt that is up only between two polls
    of qtbot.waitUntil still counts."""
    shown: list = []
    present = window.banner.present
    window.banner.present = lambda view, photo=None: (shown.append(view), present(view, photo))
    return shown


def clip_over(window) -> bool:
    """The window's video file has been read to its end (its worker finished)."""
    worker = window.controller.worker
    return window.camera_text.endswith("the video has ended") and (worker is None or worker.isFinished())


HANG_MS = 600_000     # only a guard against a hang: waits end on events (a decision, the clip's end)

# -- a real MQTT broker (Mosquitto from Debian) for the door's MQTT output --------------------
@pytest.fixture
def mosquitto(tmp_path):
    """A throw-away broker on a free port with its own config file (benchmarks/mosquitto.py),
    like tests/test_site.py's PostgreSQL."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from mosquitto import Mosquitto

    folder = tmp_path / "mosquitto"
    folder.mkdir()
    try:
        broker = Mosquitto(folder)
        broker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield broker
    broker.stop()


def mqtt_watcher(port: int, topics=("#",)):
    """A client recording every message under ``topics`` (benchmarks/mosquitto.py)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from mosquitto import MqttWatcher

    return MqttWatcher(port, topics)


def wait_for(condition, timeout: float) -> bool:
    """Poll ``condition`` until it holds; its last answer. The wait ends on the event: ``timeout``
    (what an idle PC needs) is raised to HANG_MS, a guard against a hang only, so a busy CI
    machine never fails a test that would pass."""
    import time

    deadline = time.monotonic() + max(timeout, HANG_MS / 1000)
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def sample_decision(i: int, kind: str = "GRANTED"):
    """Decision number ``i``: employee E00i when GRANTED, a stranger otherwise."""
    from faceguard.access.records import Decision, Verdict

    pid = f"E{i:03d}" if kind == "GRANTED" else None
    return Decision(float(i), Verdict(kind), pid, None if pid is None else f"Person {i}",
                    0.05 if pid else math.inf, 0.4, 3, f"event {i}", i, (1.0, 2.0, 3.0, 4.0))
# -- a throw-away PostgreSQL cluster (initdb + pg_ctl on a free port; benchmarks/pgcluster.py) --
@pytest.fixture(scope="session")
def pg(postgres_server):
    return postgres_server       # one throw-away cluster for the session


@pytest.fixture
def site_url(pg) -> str:
    """An empty site database of its own for each test."""
    import uuid

    return pg.createdb("site_" + uuid.uuid4().hex[:10])


def unit(seed: int, dim: int) -> np.ndarray:
    """A random unit vector (an embedding's shape) drawn from ``seed``."""
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def flat_photo(seed: int) -> np.ndarray:
    """A small one-colour RGB image (a stored photo where no face needs to be found)."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(30, 220, size=3)[None, None, :] + np.zeros((120, 90, 1)), 0, 255).astype(np.uint8)


class Site:
    """A site (PostgreSQL) with doors 'front' (A) and 'back' (B) in this process, each its own
    data folder and gallery key; edits through SiteGallery; ``sql`` is psql's rights without the
    site key; ``let_in`` is whom a door's matcher lets in by their own face."""

    def __init__(self, url: str, root: Path, pipeline):
        from faceguard.gallery.store import Gallery
        from faceguard.site.config import SiteConfig
        from faceguard.site.store import SiteStore

        self.url, self.root, self.pipeline = url, root, pipeline
        with SiteStore.connect(url) as store:
            self.code, self.key = store.create()
            self.site_id = store.site_id()
            for door in ("front", "back"):
                store.register_door(door)
                store.register_door_key(self.key, door)    # (one key pair: one config folder)
        SiteConfig.save_key(self.key)
        self.dim = pipeline.embedder.spec.embedding_size
        self.vecs: dict[str, np.ndarray] = {}
        self.galleries = {d: Gallery.open(root / d, root / f"{d}.key") for d in ("front", "back")}

    def edit(self, door: str = "front"):
        from faceguard.site.config import SiteConfig
        from faceguard.site.replica import SiteGallery

        return SiteGallery(self.galleries[door].db, SiteConfig(self.url, self.site_id, door))

    def replica(self, door: str):
        from faceguard.site.config import SiteConfig
        from faceguard.site.replica import Replica

        return Replica(self.galleries[door], SiteConfig(self.url, self.site_id, door), self.pipeline.model_id)

    def enrol(self, name: str, eid: str, seed: int) -> None:
        self.vecs[eid] = unit(seed, self.dim)
        self.edit().add_person(name, eid, flat_photo(seed), self.vecs[eid], self.pipeline.model_id)

    def sync(self, door: str = "back"):
        return self.replica(door).sync()

    def let_in(self, door: str = "back") -> set[str]:
        """Whom the door's matcher lets in by their own face."""
        from faceguard.gallery.ids import normalise_id
        from faceguard.gallery.recognise import gallery_matcher

        m = gallery_matcher(self.galleries[door], self.pipeline, damaged={})
        return {e for e, v in self.vecs.items()
                if m.nearest(v).accepted and normalise_id(str(m.nearest(v).id)) == normalise_id(e)}

    def sql(self, query: str, args=()) -> list:
        """psql's rights on the site database, no site key."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query, args)
            return cur.fetchall() if cur.description else []

    def close(self) -> None:
        for g in self.galleries.values():
            g.close()
def pose_landmarks(x: float, y: float) -> np.ndarray:
    """Five detector points whose head pose (access/challenge.head_point) is (x, y): x to the
    person's right, y down, pose units; eyes 60 px apart (issue 20's generated tracks)."""
    from faceguard.access.challenge import PITCH_GAIN

    u, v = -x, y / PITCH_GAIN
    em = np.array([[100, 100], [160, 100], [100, 160], [160, 160]], np.float64)
    return np.array([em[0], em[1], [130 + 30 * u, 130 + 30 * v], em[2], em[3]])


@pytest.fixture
def site(site_url, tmp_path, pipeline):
    """A two-door site (front, back) with Lin E001 and Bo E002 enrolled and synced."""
    s = Site(site_url, tmp_path, pipeline)
    s.enrol("Lin", "E001", 1)
    s.enrol("Bo", "E002", 2)
    s.sync()
    assert s.let_in() == {"E001", "E002"}
    yield s
    s.close()


def challenge_visit(fps: float, seed: int, motion, *, limit_s: float = 20.0):
    """The follow-the-target challenge (access/challenge.ChallengeRun) over one visit sampled at
    ``fps`` (with a seed-fixed phase): ``motion(t, run) -> (x, y)`` is the head's pose in
    continuous time (``pose_landmarks`` makes the frames' landmarks)."""
    import random

    from faceguard.access.challenge import ChallengeRun  # (only the tests that use it load it)

    rng = np.random.default_rng(seed)
    run = ChallengeRun(random.Random(seed))
    t = float(rng.uniform(0, 1 / fps))
    run.observe(t, pose_landmarks(*motion(t, run)))
    run.start(t)
    while t < limit_s and not (run.passed or run.failed):
        t += 1 / fps
        run.observe(t, pose_landmarks(*motion(t, run)))
    return run
