"""Embedder: aligned face chips → float32 unit vectors (FaceNet's L2-normalised embedding).

With flip averaging on, each chip is embedded together with its mirror image in the same
batch and the two vectors are averaged and re-normalised: the network was not trained to be
mirror-symmetric, so the average is a less noisy description of the face. The mode is part of
the embedding id, so stored embeddings are never compared across modes.
"""

from __future__ import annotations

import numpy as np

from faceguard.vision.models import EmbedderSpec
from faceguard.vision.runtime import session_provider

FLIP_SUFFIX = "+flip"


def embedding_id(model_id: str, flip: bool) -> str:
    return model_id + (FLIP_SUFFIX if flip else "")


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


class Embedder:
    def __init__(self, spec: EmbedderSpec, session, *, flip: bool = True, batch_size: int = 32):
        self.spec = spec
        self.session = session
        self.flip = flip
        self.batch_size = batch_size
        self.input_name = session.get_inputs()[0].name
        self._mean = np.asarray(spec.mean, np.float32).reshape(1, 3, 1, 1)
        self._inv_std = (1.0 / np.asarray(spec.std, np.float32)).reshape(1, 3, 1, 1)

    @property
    def id(self) -> str:
        """Embedding id stored beside every vector: network id plus the flip mode."""
        return embedding_id(self.spec.id, self.flip)

    @property
    def provider(self) -> str:
        return session_provider(self.session)

    def _run(self, chips: np.ndarray) -> np.ndarray:
        x = chips.transpose(0, 3, 1, 2).astype(np.float32)
        x = (x - self._mean) * self._inv_std
        return self.session.run(None, {self.input_name: x})[0]

    def embed(self, chips: np.ndarray | list[np.ndarray], flip: bool | None = None) -> np.ndarray:
        """chips: [N, S, S, 3] uint8 RGB aligned faces → [N, D] float32, unit L2 norm.
        ``flip``: with or without the mirror pass this once (None: the embedder's mode)."""
        flip = self.flip if flip is None else flip
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        n = len(chips)
        out = np.empty((n, self.spec.embedding_size), np.float32)
        if n == 0:
            return out
        step = max(1, self.batch_size // 2) if flip else self.batch_size
        for i in range(0, n, step):
            part = chips[i : i + step]
            if flip:
                both = self._run(np.concatenate([part, part[:, :, ::-1]]))
                k = len(part)
                raw = l2_normalise(both[:k]) + l2_normalise(both[k:])
            else:
                raw = self._run(part)
            out[i : i + len(part)] = l2_normalise(raw)
        return out

    def add_mirror(self, chips: np.ndarray, plain: np.ndarray) -> np.ndarray:
        """The flip-averaged embeddings of ``chips`` whose plain ones (``embed(chips, False)``)
        are known: only the mirror images go through the network."""
        chips = np.asarray(chips)
        mirror = [l2_normalise(self._run(chips[i : i + self.batch_size, :, ::-1]))
                  for i in range(0, len(chips), self.batch_size)]
        return l2_normalise(np.asarray(plain, np.float32) + np.concatenate(mirror))
