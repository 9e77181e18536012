"""Matcher: exact distances, top-2, open-set threshold, scoring rules, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceguard.errors import GalleryError
from faceguard.gallery.match import (
    DEFAULT_MARGIN_MIN_GALLERY,
    Matcher,
    rule_for_gallery_size,
)
from faceguard.vision.pipeline import distance


def unit(*v) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def random_units(n: int, d: int = 128, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return g / np.linalg.norm(g, axis=1, keepdims=True)


# Three people on the unit circle (padded to 3-D): Ana at 0°, Bob at 60°, Cid at 180°.
GALLERY = np.stack([unit(1, 0, 0), unit(0.5, math.sqrt(3) / 2, 0), unit(-1, 0, 0)])
IDS = ["E1", "E2", "E3"]
NAMES = ["Ana", "Bob", "Cid"]


def test_distances_and_top2_on_known_geometry():
    m = Matcher(IDS, GALLERY, threshold=0.4, names=NAMES)
    probe = unit(math.cos(math.radians(20)), math.sin(math.radians(20)), 0)   # 20° from Ana
    r = m.search(probe)
    # squared chord length for an angle θ between unit vectors: 2 - 2 cos θ
    assert r.id == "E1" and r.name == "Ana" and r.index == 0
    assert r.distance == pytest.approx(2 - 2 * math.cos(math.radians(20)), abs=1e-6)   # 0.1206
    assert r.runner_up_id == "E2"
    assert r.runner_up_distance == pytest.approx(2 - 2 * math.cos(math.radians(40)), abs=1e-6)
    assert r.margin == pytest.approx(r.runner_up_distance - r.distance)
    assert r.score == r.distance and r.rule == "distance"
    assert r.accepted and r.person == "E1"
    assert r.explain() == "Ana: distance 0.12 ≤ threshold 0.40"


def test_stranger_is_rejected_but_names_the_nearest():
    m = Matcher(IDS, GALLERY, threshold=0.4, names=NAMES)
    probe = unit(0, 0, 1)                                  # 90° from everyone: distance 2.0
    r = m.search(probe)
    assert not r.accepted and r.person is None
    assert r.distance == pytest.approx(2.0, abs=1e-6)
    assert r.explain() == f"stranger: nearest {r.name} at 2.00 > 0.40"


def test_threshold_is_inclusive_and_open_set():
    m = Matcher(IDS, GALLERY, threshold=0.5, names=NAMES)
    probe = unit(math.cos(math.radians(60)), math.sin(math.radians(60)), 0)  # exactly Bob
    assert m.search(probe).id == "E2"
    probe = unit(math.cos(math.radians(120)), math.sin(math.radians(120)), 0)
    r = m.search(probe)     # 60° from both Bob and Cid: distance 1.0 > 0.5
    assert r.id in ("E2", "E3") and r.distance == pytest.approx(1.0, abs=1e-5) and not r.accepted


def test_margin_rule_scores_with_runner_up():
    m = Matcher(IDS, GALLERY, threshold=0.1, rule="margin", names=NAMES)
    probe = unit(math.cos(math.radians(20)), math.sin(math.radians(20)), 0)
    r = m.search(probe)
    d1, d2 = 2 - 2 * math.cos(math.radians(20)), 2 - 2 * math.cos(math.radians(40))
    assert r.score == pytest.approx(d1 - 0.5 * (d2 - d1), abs=1e-6)    # 0.1206 - 0.5·0.3473
    assert r.rule == "margin" and r.accepted            # the distance alone (0.12) would fail 0.1
    assert r.explain().startswith("Ana: score -0.05 (distance 0.12, runner-up at 0.47) ≤ threshold 0.10")
    # Between Ana and Bob (30° from each) there is no margin: score = distance = 0.134 > 0.1
    mid = m.search(unit(math.cos(math.radians(30)), math.sin(math.radians(30)), 0))
    assert mid.score == pytest.approx(mid.distance, abs=1e-5) and not mid.accepted


def test_batch_equals_single_and_brute_force():
    # 2,500 rows: more than one of the matcher's 1,024-row blocks, and a ragged last block.
    gallery = random_units(2500, seed=1)
    ids = [f"P{i}" for i in range(2500)]
    m = Matcher(ids, gallery, threshold=1.0)
    probes = random_units(40, seed=2)
    exact = [5, 17, 2499, 0, 1023, 1024, 2048, 400, 500, 600]
    probes[:10] = gallery[exact]
    # brute force: the definition of squared L2, no algebra
    all_dists = ((probes[:, None, :].astype(np.float64) - gallery[None, :, :]) ** 2).sum(-1)
    batch = m.search(probes)
    for k, probe in enumerate(probes):
        order = np.argsort(all_dists[k])
        single = m.search(probe)
        # gemv and gemm round differently in the last bits; everything else is identical
        assert (single.index, single.runner_up_index, single.accepted) == \
            (batch[k].index, batch[k].runner_up_index, batch[k].accepted)
        assert single.distance == pytest.approx(batch[k].distance, abs=1e-5)
        assert single.index == order[0] and single.runner_up_index == order[1]
        assert single.distance == pytest.approx(all_dists[k, order[0]], abs=1e-5)
        assert single.runner_up_distance == pytest.approx(all_dists[k, order[1]], abs=1e-5)
        assert single.distance == pytest.approx(distance(probe, gallery[single.index]), abs=1e-5)
    assert [r.id for r in batch[:10]] == [f"P{i}" for i in exact]
    assert all(r.distance == pytest.approx(0.0, abs=1e-5) and r.accepted for r in batch[:10])
    # random 128-D unit vectors are near-orthogonal: distance ≈ 2 > 1.0
    assert not any(r.accepted for r in batch[10:])


def test_empty_gallery_makes_everyone_a_stranger():
    m = Matcher([], np.zeros((0, 128), np.float32), threshold=0.4)
    r = m.search(random_units(1)[0])
    assert r.index is None and r.id is None and not r.accepted and r.distance == math.inf
    assert r.explain() == "stranger: the gallery is empty"
    assert [x.accepted for x in m.search(random_units(3))] == [False, False, False]
    # An empty gallery with no known size still answers.
    assert not Matcher([], np.zeros((0,)), threshold=0.4).search(random_units(1)[0]).accepted


def test_one_person_gallery_has_no_runner_up_and_margin_falls_back():
    m = Matcher(["E1"], GALLERY[:1], threshold=0.4, rule="margin", names=["Ana"])
    r = m.search(unit(math.cos(math.radians(20)), math.sin(math.radians(20)), 0))
    assert r.runner_up_index is None and r.runner_up_distance == math.inf and r.margin == math.inf
    assert r.score == r.distance and r.accepted
    assert r.explain() == "Ana: distance 0.12 ≤ threshold 0.40"


def test_verify_measures_the_claimed_person_only():
    m = Matcher(IDS, GALLERY, threshold=0.4, names=NAMES)
    probe = unit(math.cos(math.radians(20)), math.sin(math.radians(20)), 0)
    assert m.verify(probe, "E1").accepted
    bob = m.verify(probe, "E2")
    assert bob.id == "E2" and bob.name == "Bob" and not bob.accepted
    assert bob.distance == pytest.approx(2 - 2 * math.cos(math.radians(40)), abs=1e-6)
    with pytest.raises(GalleryError, match="No person with id 'E9'"):
        m.verify(probe, "E9")


def test_rule_for_gallery_size_and_auto():
    assert rule_for_gallery_size(1) == "distance"
    assert rule_for_gallery_size(DEFAULT_MARGIN_MIN_GALLERY - 1) == "distance"
    assert rule_for_gallery_size(DEFAULT_MARGIN_MIN_GALLERY) == "margin"
    assert rule_for_gallery_size(20, min_gallery_for_margin=10) == "margin"
    assert rule_for_gallery_size(1, min_gallery_for_margin=0) == "distance"   # no runner-up
    assert Matcher(IDS, GALLERY, 0.4, rule="auto").rule == "distance"
    assert Matcher(IDS, GALLERY, 0.4, rule="auto", min_gallery_for_margin=3).rule == "margin"


@pytest.mark.parametrize("kwargs, message", [
    (dict(ids=["a", "b"], matrix=GALLERY), "2 ids but 3 embeddings"),
    (dict(ids=["a", "a", "b"], matrix=GALLERY), "same person id more than once"),
    (dict(ids=IDS, matrix=GALLERY * 2), "not unit length"),
    (dict(ids=IDS, matrix=GALLERY, threshold=5.0), "between 0 and 4"),
    (dict(ids=IDS, matrix=GALLERY, rule="cosine"), "scoring rule"),
    (dict(ids=IDS, matrix=GALLERY, names=["Ana"]), "3 ids but 1 names"),
])
def test_bad_gallery_is_refused_with_a_reason(kwargs, message):
    kwargs.setdefault("threshold", 0.4)
    with pytest.raises(GalleryError, match=message):
        Matcher(**kwargs)


def test_probe_from_another_model_is_refused():
    m = Matcher(IDS, GALLERY, threshold=0.4)
    with pytest.raises(GalleryError, match="re-embedded"):
        m.search(random_units(1, d=128)[0])
    with pytest.raises(GalleryError, match="NaN"):
        m.search(np.array([np.nan, 0, 0], np.float32))


def test_real_lfw_embeddings_find_the_right_person(pipeline, lfw):
    """One photo per person in the gallery, a second photo of each as the probe."""
    from faceguard.vision.image import load_image

    rows = [line.split("\t") for line in (lfw / "labels.tsv").read_text().splitlines()[1:]]
    by_person: dict[str, list[str]] = {}
    for path, who in rows:
        by_person.setdefault(who, []).append(path)
    people = sorted(p for p, paths in by_person.items() if len(paths) >= 2)[:8]

    def embed(rel: str) -> np.ndarray:
        faces = pipeline.process(load_image(lfw / rel))
        # LFW crops are centred on the named person: take the face nearest the centre.
        return min(faces, key=lambda f: abs((f.box[0] + f.box[2]) / 2 - 125)).embedding

    gallery = np.stack([embed(by_person[p][0]) for p in people])
    probes = np.stack([embed(by_person[p][1]) for p in people])
    m = Matcher(people, gallery, threshold=pipeline.threshold_for(len(people)))
    results = m.search(probes)
    for who, r in zip(people, results, strict=True):
        assert r.id == who, r.explain()
        assert r.distance == pytest.approx(distance(probes[people.index(who)], gallery[r.index]), abs=1e-5)
        assert r.accepted and r.distance < r.runner_up_distance
    # Drop each person from the gallery: their probe is now a stranger, and the open-set verdict
    # must be exactly "nearest other person within the threshold" (which the threshold's
    # calibration, not the matcher, decides how often happens).
    for k, who in enumerate(people):
        keep = [i for i in range(len(people)) if i != k]
        others = Matcher([people[i] for i in keep], gallery[keep], threshold=pipeline.default_threshold)
        r = others.search(probes[k])
        nearest = min(distance(probes[k], gallery[i]) for i in keep)
        assert r.id != who and r.distance == pytest.approx(nearest, abs=1e-5)
        assert r.accepted == (nearest <= pipeline.default_threshold)
        own = distance(probes[k], gallery[k])
        assert r.distance > own, f"{who}: a stranger is nearer than the person's own photo"


def test_templates_count_as_their_persons_nearest_vector():
    """Learned templates (issue 21): a person's distance is the nearest of their enrolment row
    and templates; the runner-up is another PERSON (a person's own template never is); single,
    batch, one-person and verify agree with brute force."""
    people = random_units(40, 16, seed=3)
    extra = {f"p{i}": random_units(3, 16, seed=100 + i) for i in range(0, 40, 4)}
    ids = [f"p{i}" for i in range(40)]
    m = Matcher(ids, people, 0.5, templates=extra)
    probes = random_units(25, 16, seed=7)
    for q, batched in zip(probes, m.search(probes), strict=True):
        nearest = {pid: min([distance(q, people[i])] + [distance(q, v) for v in extra.get(pid, ())])
                   for i, pid in enumerate(ids)}
        ranked = sorted(nearest, key=nearest.__getitem__)
        one = m.nearest(q)
        assert one.id == batched.id == ranked[0] and one.runner_up_id == ranked[1]
        assert one.distance == pytest.approx(nearest[ranked[0]], abs=1e-5)
        assert batched.runner_up_distance == pytest.approx(nearest[ranked[1]], abs=1e-5)
        assert m.verify(q, ranked[5]).distance == pytest.approx(nearest[ranked[5]], abs=1e-5)
    alone = Matcher(["p0"], people[:1], 0.5, templates={"p0": extra["p0"]})
    q = probes[0]
    assert alone.nearest(q).distance == pytest.approx(min(distance(q, v) for v in [people[0], *extra["p0"]]), abs=1e-5)
    with pytest.raises(GalleryError, match="not in the gallery"):
        Matcher(ids, people, 0.5, templates={"nobody": extra["p0"]})
