"""Alignment: the Umeyama similarity fit and the warp onto the 150x150 chip."""

from __future__ import annotations

import cv2
import numpy as np

from faceguard.vision.align import align_face, similarity_transform
from faceguard.vision.image import load_image

TEMPLATE = np.array([[47.56, 45.52], [101.27, 45.25], [73.73, 78.27], [50.72, 105.31],
                     [98.17, 105.24]])


def known_transform(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([scale * rot, [[tx], [ty]]])


def test_similarity_transform_recovers_rotation_scale_translation():
    src = np.random.default_rng(1).uniform(0, 250, (5, 2))
    m_true = known_transform(23.0, 0.62, -41.5, 17.25)
    dst = src @ m_true[:, :2].T + m_true[:, 2]
    m = similarity_transform(src, dst)
    assert m.shape == (2, 3)
    np.testing.assert_allclose(m, m_true, atol=1e-9)


def test_similarity_transform_is_least_squares_and_never_reflects():
    # A mirrored point set cannot be matched by rotation + scale: the fit must stay a proper
    # rotation (det > 0) instead of returning a reflection.
    src = np.array([[0, 0], [10, 0], [0, 5], [10, 5], [5, 9]], float)
    dst = src * [-1, 1]
    m = similarity_transform(src, dst)
    assert np.linalg.det(m[:, :2]) > 0
    # With noise added, the fit is no worse than the true transform (it minimises the error).
    rng = np.random.default_rng(2)
    m_true = known_transform(-10, 1.4, 3, 4)
    noisy = src @ m_true[:, :2].T + m_true[:, 2] + rng.normal(0, 0.3, src.shape)
    fit = similarity_transform(src, noisy)
    err = lambda mm: np.sum((src @ mm[:, :2].T + mm[:, 2] - noisy) ** 2)  # noqa: E731
    assert err(fit) <= err(m_true) + 1e-12


def test_align_face_maps_landmarks_onto_template():
    # An image with five dots at rotated/scaled template positions: after alignment the dots
    # must sit on the template.
    m_true = known_transform(15.0, 1.6, 60.0, 30.0)
    lm = TEMPLATE @ m_true[:, :2].T + m_true[:, 2]
    img = np.zeros((400, 400, 3), np.uint8)
    for x, y in lm:
        cv2.circle(img, (round(x), round(y)), 4, (255, 255, 255), -1)
    chip = align_face(img, lm, TEMPLATE, 150)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    for x, y in TEMPLATE:
        assert chip[round(y), round(x)].min() > 200, (x, y)
    assert chip.mean() < 30  # the rest stays black


def test_downscale_path_matches_aligning_a_pre_shrunk_image(lfw, pipeline):
    """A face 8x larger than the chip, with 1-pixel noise on top: the area-averaging path must
    give nearly the chip of the pre-shrunk photo, where a plain warp would alias the noise."""
    rgb = load_image(lfw / "images/Abel_Pacheco/Abel_Pacheco_0001.jpg")
    lm = pipeline.detect(rgb)[0].landmarks
    k = 8
    big = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST).astype(np.int16)
    checker = (np.indices(big.shape[:2]).sum(0) % 2 * 2 - 1) * 60  # ±60, period 2 px
    big = np.clip(big + checker[..., None], 0, 255).astype(np.uint8)
    big_lm = (lm + 0.5) * k - 0.5  # pixel centres scale about the half-pixel

    shrunk = cv2.resize(big, None, fx=1 / k, fy=1 / k, interpolation=cv2.INTER_AREA)
    reference = align_face(shrunk, lm, TEMPLATE, 150)
    chip = align_face(big, big_lm, TEMPLATE, 150)

    m = similarity_transform(big_lm, TEMPLATE)
    naive = cv2.warpAffine(big, m, (150, 150), flags=cv2.INTER_LINEAR)

    diff = np.abs(chip.astype(float) - reference).mean()
    naive_diff = np.abs(naive.astype(float) - reference).mean()
    assert chip.shape == (150, 150, 3)
    assert diff < 4.0, diff
    assert naive_diff > 3 * diff, (naive_diff, diff)
