"""Accuracy arithmetic on hand-made examples with known answers, and the dev-set file readers."""

from __future__ import annotations

import numpy as np
import pytest

from faceguard.errors import FaceGuardError
from faceguard.tools import evaluate as ev


def test_best_threshold_separable():
    dist = np.array([0.8, 0.1, 0.6, 0.3, 0.2, 0.7])
    same = np.array([False, True, False, True, True, False])
    assert ev.best_threshold(dist, same) == pytest.approx(0.45)  # midway between 0.3 and 0.6


def test_best_threshold_with_overlap_takes_the_first_best_cut():
    # sorted: 0.1 S, 0.2 S, 0.4 D, 0.5 S, 0.7 D, 0.8 D -> cutting after 0.2 or after 0.5 both
    # get 5 of 6 right; the first such cut is kept.
    dist = np.array([0.1, 0.2, 0.5, 0.4, 0.7, 0.8])
    same = np.array([True, True, True, False, False, False])
    t = ev.best_threshold(dist, same)
    assert t == pytest.approx(0.3)
    assert np.mean((dist <= t) == same) == pytest.approx(5 / 6)


def test_kfold_accuracy_known_answer():
    # 10 genuine pairs at 0.10..0.19, 10 impostors at 0.60..0.69, and one genuine pair (index 0)
    # moved to 0.9, beyond every impostor: only that pair can ever be wrong.
    same_d = np.linspace(0.10, 0.19, 10)
    diff_d = np.linspace(0.60, 0.69, 10)
    dist = np.concatenate([same_d, diff_d])
    same = np.array([True] * 10 + [False] * 10)
    perfect = ev.kfold_accuracy(dist, same, k=10)
    assert perfect["accuracy"] == 1.0 and perfect["folds"] == 10
    assert 0.19 < perfect["threshold"] < 0.60
    dist[0] = 0.9
    r = ev.kfold_accuracy(dist, same, k=10)
    # interleaved folds of 2 pairs: the fold holding the outlier scores 1/2, the other nine 2/2
    assert r["accuracy"] == pytest.approx((9 * 1.0 + 0.5) / 10)
    assert r["accuracy_std"] == pytest.approx(np.std([1.0] * 9 + [0.5]))
    # explicit folds are honoured: two folds, each with the threshold learnt on the other
    folds = np.array([0, 1] * 10)
    r2 = ev.kfold_accuracy(dist, same, folds)
    assert r2["folds"] == 2 and r2["accuracy"] == pytest.approx((1.0 + 9 / 10) / 2)


def test_kfold_correct_marks_the_one_wrong_pair():
    same_d, diff_d = np.linspace(0.10, 0.19, 10), np.linspace(0.60, 0.69, 10)
    dist = np.concatenate([same_d, diff_d])
    dist[0] = 0.9
    same = np.array([True] * 10 + [False] * 10)
    correct, folds, thresholds = ev.kfold_correct(dist, same, k=10)
    assert correct.tolist() == [False] + [True] * 19
    assert folds.tolist() == [i % 10 for i in range(20)] and len(thresholds) == 10


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_more_items():
    few = np.array([1.0] * 98 + [0.0] * 2)        # 98 % of 100 right
    many = np.array([1.0] * 980 + [0.0] * 20)     # 98 % of 1000 right
    lo, hi = ev.bootstrap_ci(few)
    lo2, hi2 = ev.bootstrap_ci(many)
    assert lo < 0.98 < hi and lo2 < 0.98 < hi2
    assert hi2 - lo2 < 0.5 * (hi - lo)            # about 1/sqrt(10) as wide
    # binomial standard error of 98 % over 1000 items is 0.44 %: the 95 % interval is ≈ ±0.87 %
    assert (hi2 - lo2) / 2 == pytest.approx(1.96 * np.sqrt(0.98 * 0.02 / 1000), rel=0.15)
    assert ev.bootstrap_ci(np.ones(50)) == (1.0, 1.0)   # nothing to resample differently
    # paired differences: identical systems differ by exactly nothing
    assert ev.bootstrap_ci(few - few) == (0.0, 0.0)


def test_tar_at_far():
    diff = np.linspace(0.5, 1.5, 1000)
    same = np.array([0.4, 0.5, 0.505, 0.52, 2.0])
    tar, t = ev.tar_at_far(same, diff, 0.01)
    assert np.mean(diff <= t) == pytest.approx(0.01)  # exactly 10 of 1000 impostors accepted
    assert diff[9] <= t < diff[10]
    assert tar == pytest.approx(3 / 5)  # 0.4, 0.5, 0.505 are below diff[10] = 0.51001
    tar0, t0 = ev.tar_at_far(same, diff, 1e-4)  # fewer than one impostor allowed: accept none
    assert t0 < diff[0] and tar0 == pytest.approx(1 / 5)


def test_read_pairs_dev(lfw):
    pairs = ev.read_pairs(lfw / "pairs_dev.txt")
    assert len(pairs) == 600
    assert sum(p.same for p in pairs) == 300
    assert pairs[0] == ev.Pair("images/Abel_Pacheco/Abel_Pacheco_0001.jpg",
                               "images/Abel_Pacheco/Abel_Pacheco_0004.jpg", True, 0)
    assert not pairs[300].same and pairs[300].a != pairs[300].b
    assert {p.fold for p in pairs} == {0}
    ev.require_images(lfw, sorted({p.a for p in pairs} | {p.b for p in pairs}))


def test_read_pairs_bad_files(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("1\t2\nA\t1\t2\n")
    with pytest.raises(FaceGuardError, match=f"{short}: header promises 4 pairs, found 1"):
        ev.read_pairs(short)
    junk = tmp_path / "junk.txt"
    junk.write_text("1\t1\nA 1\n")
    with pytest.raises(FaceGuardError, match=f"{junk}: not a pairs file.*line 2 has 2 fields"):
        ev.read_pairs(junk)
    with pytest.raises(FaceGuardError, match="not a pairs file"):
        ev.read_pairs(tmp_path / "absent.txt")


def test_require_images_names_a_missing_one(lfw):
    with pytest.raises(FaceGuardError, match="1 image.*missing.*images/Nobody/Nobody_0001.jpg"):
        ev.require_images(lfw, ["images/Abel_Pacheco/Abel_Pacheco_0001.jpg",
                                "images/Nobody/Nobody_0001.jpg"])


def test_threshold_curve_matches_the_formula():
    impostor = np.linspace(0.0, 1.0, 100_001)  # uniform: the q-quantile is q itself
    rng = np.random.default_rng(0)
    curve = ev.threshold_curve(rng.permutation(impostor), fpir=0.01)
    # 500 people need q = 2e-5 -> 2 pairs below: too few, so the curve stops at 200
    assert [n for n, _ in curve] == [1, 2, 5, 10, 20, 50, 100, 200]
    for n, t in curve:
        assert t == pytest.approx(1 - 0.99 ** (1 / n), abs=6e-5), n
    ts = [t for _, t in curve]
    assert ts == sorted(ts, reverse=True)
    assert curve[0][1] == pytest.approx(0.01, abs=1e-4)


def test_read_split(lfw):
    split = ev.read_split(lfw / "identification_split.tsv")
    assert len(split.gallery_paths) == 159
    assert len(split.probe_paths) == 350
    assert len(split.stranger_paths) == 78
    assert len(set(split.gallery_ids)) == 159  # one photo per person
    assert set(split.probe_ids) <= set(split.gallery_ids)
    assert not set(split.stranger_paths) & set(split.gallery_paths + split.probe_paths)
    assert split.gallery_paths[0] == "images/Abel_Pacheco/Abel_Pacheco_0001.jpg"


def test_top2_and_open_set_on_a_hand_made_gallery():
    # three enrolled people on the axes; a probe near person b, a stranger far from everyone
    gallery = np.eye(3, dtype=np.float32)
    probe = np.array([[0.1, 0.99, 0.0]], np.float32)
    probe /= np.linalg.norm(probe)
    stranger = np.array([[-1.0, 0.0, 0.0]], np.float32)
    best, d1, d2 = ev.top2(probe, gallery)
    assert best.tolist() == [1]
    assert d1[0] == pytest.approx(2 - 2 * probe[0, 1], abs=1e-6)
    assert d2[0] == pytest.approx(2 - 2 * probe[0, 0], abs=1e-6)
    r = ev.open_set(probe, ["b"], stranger, gallery, ["a", "b", "c"], threshold=0.5)
    assert r["rank1"] == 1.0 and r["fnir"] == 0.0 and r["fpir"] == 0.0
    r = ev.open_set(probe, ["b"], stranger, gallery, ["a", "b", "c"], threshold=0.001)
    assert r["fnir"] == 1.0  # right person, but not within the threshold
    assert ev.threshold_at_fpir(np.array([0.3, 0.1, 0.2, 0.4]), 0.25) == pytest.approx(0.2 - 1e-9)


def _synthetic_split(n_people=60, n_strangers=40, dim=16, noise=0.35, seed=0):
    """Unit embeddings: one cluster per person (gallery photo + 2 probes), plus strangers."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people + n_strangers, dim))
    paths, emb = [], []

    def add(path, centre):
        v = centre + noise * rng.normal(size=dim)
        paths.append(path)
        emb.append(v / np.linalg.norm(v))

    gallery, probes, probe_ids = [], [], []
    for i in range(n_people):
        add(f"p{i}/g.jpg", centres[i])
        gallery.append(f"p{i}/g.jpg")
        for k in range(2):
            add(f"p{i}/q{k}.jpg", centres[i])
            probes.append(f"p{i}/q{k}.jpg")
            probe_ids.append(f"p{i}")
    strangers = []
    for j in range(n_strangers):
        add(f"s{j}/x.jpg", centres[n_people + j])
        strangers.append(f"s{j}/x.jpg")
    es = ev.EmbeddedSet(np.array(paths), np.array(emb, np.float32), np.ones(len(paths), bool))
    split = ev.IdentificationSet(gallery, [p.split("/")[0] for p in gallery], probes, probe_ids,
                                 strangers, [s.split("/")[0] for s in strangers])
    return es, split


def test_office_galleries_calibrates_each_rule_to_the_stranger_rate():
    es, split = _synthetic_split()
    out = ev.office_galleries(es, split, size=30, draws=20, fpir=0.05)
    assert out["gallery_size"] == 30 and out["draws"] == 20
    for rule in ("distance", "margin"):
        r = out[rule]
        # the median per-draw threshold, applied to every draw, keeps strangers near the target
        assert 0.0 <= r["fixed_threshold_fpir"] <= 0.10
        assert 0.0 < r["hits_mean"] <= 1.0
    # the margin score is never above the plain distance, so its threshold is the lower one
    assert out["margin"]["threshold"] < out["distance"]["threshold"]


def test_leave_one_out_strangers_never_search_their_own_photo():
    es, split = _synthetic_split(n_people=10, n_strangers=5)
    loo = ev.leave_one_out_strangers(es, split)
    assert loo.shape == (len(split.probe_paths) + len(split.stranger_paths),)
    idx = es.index()
    g = es.emb[[idx[p] for p in split.gallery_paths]]
    first = es.emb[idx[split.probe_paths[0]]]
    own = 2 - 2 * float(first @ g[0])
    others = (2 - 2 * (g[1:] @ first)).min()
    assert loo[0] == pytest.approx(others, abs=1e-5) and loo[0] > own


@pytest.mark.parametrize("rule", ["distance", "margin"])
def test_calibrate_meets_the_stranger_rate_with_leave_one_out_strangers(rule):
    es, split = _synthetic_split(n_people=60, n_strangers=40)
    r = ev.calibrate(es, split, fpir=0.05, rule=rule)
    assert r["strangers"] == len(split.probe_paths) + len(split.stranger_paths)
    assert r["fpir"] <= 0.05
    scores = np.array(r["stranger_scores"])
    assert np.mean(scores <= r["threshold"]) == pytest.approx(r["fpir"])
    assert len(r["probe_scores"]) == len(split.probe_paths)


def test_calibration_plot_is_written(tmp_path):
    import cv2

    from faceguard.tools.plot import distance_histograms

    out = distance_histograms([0.05, 0.06, 0.08], [0.15, 0.2, -0.01], 0.1, tmp_path / "h.png")
    img = cv2.imread(str(out))
    assert img is not None and img.shape == (420, 900, 3) and img.std() > 5


def test_embed_files_reports_progress_only_when_asked(lfw, pipeline, capsys):
    files = ["images/Abel_Pacheco/Abel_Pacheco_0001.jpg", "images/Amber_Tamblyn/Amber_Tamblyn_0001.jpg"]
    calls = []
    es = ev.embed_files(pipeline, lfw, files, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)] and es.emb.shape == (2, 128)
    ev.embed_files(pipeline, lfw, files)          # library code: quiet unless asked
    assert capsys.readouterr() == ("", "")


class _Terminal:
    """A stream that says it is a terminal and keeps what is written."""

    def __init__(self):
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_progress_bar_redraws_one_line_per_run_on_a_terminal():
    from faceguard.tools.progress import ProgressBar

    term = _Terminal()
    bar = ProgressBar("embedding", term, every_s=0.0)
    for i in range(1, 5):
        bar(i, 4, note=f"step {i}")
    bar(1, 2, label="epoch 2/2")
    bar(2, 2, label="epoch 2/2", note="x")
    lines = term.text.split("\n")
    assert len(lines) == 3 and lines[-1] == ""    # two runs, each ended by a newline
    first = lines[0].split("\r")[1:]
    assert len(first) == 4 and first[0].startswith("embedding [#######") and " 1/4 " in first[0]
    assert first[-1].startswith(f"embedding [{'#' * 30}] 4/4 ") and first[-1].rstrip().endswith("step 4")
    assert lines[1].split("\r")[-1].startswith(f"epoch 2/2 [{'#' * 30}] 2/2 ")
    # a shorter line blanks what the longer one before it left on screen
    assert all(len(b) >= len(a.rstrip()) for a, b in zip(first, first[1:], strict=False))


def test_progress_bar_is_silent_off_a_terminal():
    import io

    from faceguard.tools.progress import ProgressBar

    stream = io.StringIO()                          # a service's log, a test's capture
    bar = ProgressBar("embedding", stream, every_s=0.0)
    for i in range(1, 4):
        bar(i, 3)
    assert stream.getvalue() == ""


def test_the_door_never_imports_the_tools_or_the_cli():
    """Layers (DESIGN.md): tools and cli sit on top; nothing the door runs imports them, not
    even through another module."""
    import grimp

    graph = grimp.build_graph("faceguard")
    below = ["faceguard.doorcheck", "faceguard.access", "faceguard.gallery", "faceguard.vision",
             "faceguard.camera", "faceguard.settings", "faceguard.paths", "faceguard.errors"]
    for low in below:
        for top in ("faceguard.tools", "faceguard.cli"):
            chain = graph.find_shortest_chain(importer=low, imported=top, as_packages=True)
            assert chain is None, f"{low} imports {top}: {' -> '.join(chain)}"
    # and the check can see an import when there is one
    assert graph.find_shortest_chain(importer="faceguard.cli", imported="faceguard.tools",
                                     as_packages=True)
