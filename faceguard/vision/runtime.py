"""onnxruntime sessions with an explicit execution-provider choice.

`auto` takes CUDA when onnxruntime-gpu is installed and sees a GPU, else the CPU. Whatever is
chosen, `session_provider()` reports what actually runs, because onnxruntime silently falls
back to the CPU when the CUDA provider fails to load.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from faceguard.errors import ModelError, RuntimeProviderError

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)

PROVIDER_CHOICES = ("auto", "cuda", "cpu")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


def _onnxruntime():
    """The onnxruntime module; it comes with the [cpu] or the [gpu] extra, not with FaceGuard
    itself (the two packages shadow each other, so only one may be installed)."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise RuntimeProviderError(
            "No ONNX runtime is installed: install FaceGuard with "
            "`python3 -m pip install '.[cpu]'` (or '.[gpu]' for an NVIDIA GPU)."
        ) from exc
    return onnxruntime


def available_providers() -> list[str]:
    return list(_onnxruntime().get_available_providers())


def _providers_for(choice: str) -> list[str]:
    if choice not in PROVIDER_CHOICES:
        raise RuntimeProviderError(
            f"Unknown execution provider '{choice}': choose one of {', '.join(PROVIDER_CHOICES)}."
        )
    have_cuda = _CUDA in available_providers()
    if choice == "cuda":
        if not have_cuda:
            raise RuntimeProviderError(
                "CUDA was requested but this onnxruntime has no CUDA provider: install "
                "FaceGuard with the [gpu] extra (onnxruntime-gpu) or choose 'auto' or 'cpu'."
            )
        return [_CUDA, _CPU]
    if choice == "auto" and have_cuda:
        return [_CUDA, _CPU]
    return [_CPU]


def default_threads() -> int:
    env = os.environ.get("FACEGUARD_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(os.cpu_count() or 1, 8))


def create_session(path: Path, provider: str = "auto", threads: int | None = None) -> ort.InferenceSession:
    """Open one ONNX file; raises ModelError naming the file when it cannot be loaded."""
    ort = _onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # No busy-waiting between ops: the UI thread and the camera grabber share these cores,
    # and spinning threads starve them (measured under load: detect 138 → 94 ms).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = _providers_for(provider)
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
        raise ModelError(f"The model file {path} could not be loaded ({exc.__class__.__name__}); "
                         "reinstall FaceGuard or run `faceguard doctor`.") from exc
    running = session_provider(session)
    if provider == "cuda" and running != "CUDA":
        raise RuntimeProviderError(
            f"CUDA was requested for {Path(path).name} but onnxruntime runs it on the CPU: "
            "check the NVIDIA driver and CUDA/cuDNN libraries (`faceguard doctor`)."
        )
    if provider == "auto" and _CUDA in providers and running != "CUDA":
        log.warning("CUDA provider present but %s fell back to the CPU", Path(path).name)
    return session


def session_provider(session: ort.InferenceSession) -> str:
    """'CUDA' or 'CPU': the provider that actually runs the first node."""
    return "CUDA" if session.get_providers()[0] == _CUDA else "CPU"
