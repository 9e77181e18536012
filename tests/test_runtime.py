"""Execution-provider choice: what is asked for either runs, or fails with a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from faceguard.errors import FaceGuardError, ModelError, RuntimeProviderError
from faceguard.vision import runtime
from faceguard.vision.pipeline import FacePipeline

PNET = Path(__file__).resolve().parents[1] / "models" / "mtcnn_pnet.onnx"
HAVE_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.mark.skipif(HAVE_CUDA, reason="this onnxruntime has the CUDA provider")
def test_cuda_without_cuda_provider_is_refused_clearly():
    with pytest.raises(RuntimeProviderError) as info:
        runtime.create_session(PNET, "cuda")
    msg = str(info.value)
    assert "CUDA" in msg and "[gpu]" in msg and "'cpu'" in msg
    assert isinstance(info.value, FaceGuardError)
    with pytest.raises(RuntimeProviderError):
        FacePipeline.load("cuda")


@pytest.mark.skipif(HAVE_CUDA, reason="this onnxruntime has the CUDA provider")
def test_auto_without_cuda_runs_on_cpu():
    assert runtime.session_provider(runtime.create_session(PNET, "auto", threads=1)) == "CPU"


def test_cpu_session_runs_on_cpu():
    session = runtime.create_session(PNET, "cpu", threads=1)
    assert runtime.session_provider(session) == "CPU"
    assert session.get_providers() == ["CPUExecutionProvider"]
    x = np.zeros((1, 3, 12, 12), np.float32)
    outs = session.run(None, {session.get_inputs()[0].name: x})
    assert len(outs) >= 2  # P-Net: box regression and face probability


def test_pipeline_reports_cpu(pipeline):
    assert pipeline.provider == "CPU"


def test_unknown_provider_choice():
    with pytest.raises(RuntimeProviderError, match="Unknown execution provider 'tpu'.*auto, cuda, cpu"):
        runtime.create_session(PNET, "tpu")


def test_unloadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"definitely not protobuf" * 10)
    with pytest.raises(ModelError, match=r"broken\.onnx could not be loaded"):
        runtime.create_session(bad, "cpu")


def test_thread_count_from_environment(monkeypatch):
    monkeypatch.setenv("FACEGUARD_THREADS", "3")
    assert runtime.default_threads() == 3
    monkeypatch.setenv("FACEGUARD_THREADS", "lots")
    assert 1 <= runtime.default_threads() <= 8
