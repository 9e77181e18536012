"""The engine commands of `faceguard` (embed, verify, eval, doctor, bench) on real photos, and the
CLI's error boundary and refused options as a user meets them (subprocesses, exit codes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.cli import main
from faceguard.tools.evaluate import EmbeddedSet
from faceguard.vision.image import load_image
from faceguard.vision.models import load_manifest
from faceguard.vision.pipeline import distance

ABEL_1 = "images/Abel_Pacheco/Abel_Pacheco_0001.jpg"
ABEL_4 = "images/Abel_Pacheco/Abel_Pacheco_0004.jpg"
AMBER_1 = "images/Amber_Tamblyn/Amber_Tamblyn_0001.jpg"
REPO = Path(__file__).resolve().parents[1]

PAIRS = """1\t4
Abel_Pacheco\t1\t4
Akhmed_Zakayev\t1\t3
Akhmed_Zakayev\t2\t3
Amber_Tamblyn\t1\t2
Abdel_Madi_Shabneh\t1\tMikhail_Gorbachev\t1
Abel_Pacheco\t1\tJong_Thae_Hwa\t2
Akhmed_Zakayev\t2\tDonna_Morrissey\t1
Alan_Dershowitz\t1\tBertrand_Bonello\t1
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([*argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_verify_same_person(lfw, capsys):
    rc, out, err = run(capsys, "verify", str(lfw / ABEL_1), str(lfw / ABEL_4), "--json",
                       "--provider", "cpu")
    assert rc == 0, err
    r = json.loads(out)
    assert r["same"] is True
    assert r["distance"] < r["threshold"]
    assert r["faces_in_a"] == r["faces_in_b"] == 1
    assert r["model"].endswith("+flip")


def test_verify_different_people(lfw, capsys, pipeline):
    rc, out, err = run(capsys, "verify", str(lfw / ABEL_1), str(lfw / AMBER_1), "--json",
                       "--provider", "cpu")
    assert rc == 0, err
    r = json.loads(out)
    assert r["same"] is False
    assert r["distance"] > r["threshold"]
    # the CLI's distance is the pipeline's distance between the two photos' faces
    a, b = (pipeline.process(load_image(lfw / p))[0].embedding for p in (ABEL_1, AMBER_1))
    assert r["distance"] == pytest.approx(distance(a, b), abs=1e-4)


def test_verify_threshold_option_decides(lfw, capsys):
    rc, out, _ = run(capsys, "verify", str(lfw / ABEL_1), str(lfw / AMBER_1), "--threshold", "3.9",
                     "--provider", "cpu")
    assert rc == 0
    assert out.startswith("same person: distance") and "threshold 3.900" in out


@pytest.mark.parametrize("value", ["0", "-0.5", "4.5", "half"])
def test_verify_refuses_a_threshold_outside_the_distance_range(value, capsys):
    rc, out, err = run(capsys, "verify", "a.jpg", "b.jpg", "--threshold", value)
    assert rc == 2 and out == ""
    assert err.splitlines()[-1].startswith("faceguard verify: error: argument --threshold: ")


def test_verify_bad_image_exits_2_with_one_line(lfw, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_text("not a picture")
    rc, out, err = run(capsys, "verify", str(lfw / ABEL_1), str(bad), "--provider", "cpu")
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and lines[0].startswith("faceguard: ")
    assert "Traceback" not in err


def test_verify_no_face_exits_2(lfw, tmp_path, capsys):
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((200, 200, 3), 128, np.uint8))
    rc, _, err = run(capsys, "verify", str(grey), str(lfw / ABEL_1), "--provider", "cpu")
    assert rc == 2
    assert err.strip() == f"faceguard: {grey}: no face found."


def test_verify_subprocess_bad_image_has_no_traceback(tmp_path):
    missing = tmp_path / "nobody.jpg"
    proc = subprocess.run([sys.executable, "-m", "faceguard.cli", "verify", str(missing), str(missing),
                           "--provider", "cpu"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"faceguard: {missing}: file not found."


def test_embed_folder_to_npz(lfw, tmp_path, capsys, pipeline):
    root = tmp_path / "photos"
    for rel in (ABEL_1, ABEL_4, AMBER_1):
        dst = root / Path(rel).relative_to("images")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lfw / rel, dst)
    cv2.imwrite(str(root / "wall.png"), np.full((250, 250, 3), 128, np.uint8))
    out_file = tmp_path / "emb.npz"

    rc, out, err = run(capsys, "embed", str(root), "--out", str(out_file), "--provider", "cpu")
    assert rc == 0, err
    assert out.strip() == (f"4 images embedded to {out_file}; no face found in 1 "
                           "(centre crop embedded instead)")
    with np.load(out_file, allow_pickle=False) as z:
        assert set(z.files) == {"paths", "emb", "found"}
        paths, emb, found = z["paths"].tolist(), z["emb"], z["found"]
    assert paths == ["Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg",
                     "Amber_Tamblyn/Amber_Tamblyn_0001.jpg", "wall.png"]
    assert emb.shape == (4, 128) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert found.dtype == bool and found.tolist() == [True, True, True, False]
    # the stored vectors are the pipeline's embeddings of the same photos
    ref = pipeline.process(load_image(lfw / ABEL_1))[0].embedding
    np.testing.assert_allclose(emb[0], ref, atol=1e-5)
    assert distance(emb[0], emb[1]) < distance(emb[0], emb[2])
    loaded = EmbeddedSet.load(out_file)
    assert loaded.index()["wall.png"] == 3


def test_embed_refuses_an_unreadable_image(lfw, tmp_path, capsys):
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(lfw / ABEL_1, root / "a.jpg")
    (root / "b.jpg").write_bytes(b"")
    out_file = tmp_path / "emb.npz"
    rc, _, err = run(capsys, "embed", str(root), "--out", str(out_file), "--provider", "cpu")
    assert rc == 2
    assert err.strip().splitlines()[-1] == f"faceguard: {root / 'b.jpg'}: the file is empty (0 bytes)."
    assert not out_file.exists()  # nothing half-written


def test_embed_empty_folder(tmp_path, capsys):
    rc, _, err = run(capsys, "embed", str(tmp_path), "--out", str(tmp_path / "x.npz"))
    assert rc == 2 and "no .jpg or .png files" in err


def test_doctor_lists_provider_and_model_files(capsys):
    rc, out, err = run(capsys, "doctor", "--provider", "cpu")
    assert rc == 0, err
    assert "onnxruntime providers available: " in out and "CPUExecutionProvider" in out
    assert "runs on: CPU" in out
    for name in load_manifest().sha256:
        assert f"  ok   {name}" in out.splitlines(), name
    assert "BAD" not in out


def test_eval_pairs_prints_accuracy(lfw, tmp_path, capsys):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(PAIRS)
    report = tmp_path / "r.json"
    rc, out, err = run(capsys, "eval", "pairs", str(lfw), str(pairs), "--json", str(report),
                       "--provider", "cpu")
    assert rc == 0, err
    assert out.startswith("pairs 8: accuracy 100.00 %")
    r = json.loads(report.read_text())
    assert r["pairs"] == 8 and r["accuracy"] == 1.0 and r["faces_found"] == 1.0
    assert 0 < r["threshold"] < 4


def test_eval_pairs_with_missing_image(tmp_path, capsys):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(PAIRS)
    rc, _, err = run(capsys, "eval", "pairs", str(tmp_path), str(pairs), "--provider", "cpu")
    assert rc == 2
    assert "missing under" in err and "Traceback" not in err


def test_bench_times_embedding_and_whole_frames_of_a_video(shared_data, tmp_path, capsys):
    out = tmp_path / "bench.json"
    clip = shared_data / "video" / "short_hamilton_clip.mp4"
    rc = main(["bench", "--provider", "cpu", "--camera", str(clip), "--frames", "8", "--batch", "4",
               "--runs", "2", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["provider"] == "CPU" and r["batch"] == 4 and r["frames"] == 8
    assert r["faces"] >= 8                       # Lin is in every one of the first frames
    assert 0 < r["embed_ms_per_face"] < 1000
    assert r["faces_per_second"] == pytest.approx(1000 / r["embed_ms_per_face"])
    assert 0 < r["frame_ms_median"] <= r["frame_ms_p95"]
    assert f"{r['embed_ms_per_face']:.2f} ms per face at batch 4" in text
    assert f"median {r['frame_ms_median']:.1f} ms" in text and "runs on: CPU" in text


def test_bench_refuses_bad_values_and_missing_video(tmp_path, capsys):
    assert main(["bench", "--batch", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert main(["bench", "--provider", "cpu", "--camera", str(tmp_path / "none.mp4")]) == 2
    err = capsys.readouterr().err
    assert "none.mp4" in err and "Traceback" not in err


# -- the error boundary and refused options: real subprocesses, real exit codes -----------------
CLIP = REPO.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"


def faceguard(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`faceguard ARGV` as a user runs it (this checkout's package, the test's private dirs)."""
    return subprocess.run([sys.executable, "-m", "faceguard.cli", *argv], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def test_unwritable_output_is_one_line_naming_the_path(lfw, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(lfw / ABEL_1, root / "a.jpg")
    out = tmp_path / "no-such-folder" / "x.npz"
    proc = faceguard("embed", str(root), "--out", str(out), "--provider", "cpu")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"faceguard: {out}: the folder {out.parent} does not exist."]
    assert proc.stdout == ""


def test_output_that_is_a_folder_is_one_line_naming_the_problem(lfw, tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(PAIRS)
    proc = faceguard("eval", "pairs", str(lfw), str(pairs), "--json", str(tmp_path), "--provider", "cpu")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"faceguard: {tmp_path}: is a directory."]
    assert proc.stdout.startswith("pairs 8: accuracy")  # the numbers were printed before


def _door_on_a_loop(*limit: str, started=lambda proc: None) -> subprocess.Popen:
    # Lin enrolled (the callers ask for lin_enrolled): decision lines keep coming as the clip
    # loops (him after each cool-down, the audience as strangers). An empty gallery decides nothing.
    # (SIGINT at its default, as in a terminal: a test run started in the background inherits it
    # ignored, and Python then never raises KeyboardInterrupt)
    proc = subprocess.Popen([sys.executable, "-m", "faceguard.cli", "door", "--camera", str(CLIP),
                             "--headless", "--loop", "--provider", "cpu", *limit],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started(proc)
    first = proc.stdout.readline()
    assert json.loads(first)["decision"] in ("GRANTED", "DENIED"), proc.stderr.read()
    return proc


HANG_S = 600    # a guard against a hang only: each wait below ends on an event


def test_ctrl_c_exits_130_quietly(lin_enrolled):
    """No wall-clock limit on the door (a busy PC reached `--max-seconds` before the signal and
    ended with 0): it runs until the signal, which comes after its first decision line."""
    import threading
    running: list[subprocess.Popen] = []
    guard = threading.Timer(HANG_S, lambda: [p.kill() for p in running])
    guard.start()
    try:
        proc = _door_on_a_loop(started=running.append)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate()
    finally:
        guard.cancel()
    assert proc.returncode == 130, err
    assert err == ""


def test_reader_going_away_ends_the_door_quietly(lin_enrolled):
    """`faceguard door ... | head -1`: the pipe closes after one line."""
    proc = _door_on_a_loop("--max-seconds", "90")
    proc.stdout.close()
    rc = proc.wait(timeout=90)
    err = proc.stderr.read()
    proc.stderr.close()
    assert rc == 141, err      # a broken pipe, not the 90 s limit (that would be 0)
    assert err == ""


def test_reader_gone_before_the_output_is_flushed_is_quiet_too():
    """Block-buffered output to a pipe is written at the end: `faceguard gallery list | true`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as usual
    proc = subprocess.Popen([sys.executable, "-m", "faceguard.cli", "gallery", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env=env)
    proc.stdout.close()                 # before the child has even imported FaceGuard
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141
    assert err == ""


def test_a_bug_is_one_line_and_a_logged_traceback(monkeypatch, capsys, caplog):
    from faceguard import paths
    from faceguard.cli import engine

    def broken(args):
        raise ValueError("a bug")

    monkeypatch.setattr(engine, "cmd_verify", broken)
    assert main(["verify", "a.jpg", "b.jpg"]) == 70
    err = capsys.readouterr().err
    assert err.splitlines() == [f"faceguard: unexpected error (ValueError: a bug); please report "
                                f"it with the details from {paths.log_file()}"]
    assert "Traceback" not in err
    # the traceback goes to the log (the log file outside tests), for the bug report
    (record,) = [r for r in caplog.records if r.name == "faceguard"]
    assert record.exc_info and record.exc_info[0] is ValueError


@pytest.mark.parametrize(("argv", "error"), [
    (["door", "--claim", "E001"], "faceguard door: error: --claim needs --headless"),
    (["door", "--timeline", "--loop"], "faceguard door: error: --loop, --timeline needs --headless"),
    (["door", "--headless", "--fullscreen"], "faceguard door: error: --fullscreen is for the window"),
    (["door", "--headless", "--loop", "--camera", "0"],
     "faceguard door: error: --loop replays a video file; camera 0 is live"),
    (["bench", "--frames", "5"], "faceguard bench: error: --frames counts camera frames"),
    (["eval", "identify", "ROOT", "SPLIT", "--draws", "5"],
     "faceguard eval identify: error: --draws needs --gallery-size"),
    (["calibrate", "ROOT", "SPLIT", "--save", "--rule", "margin"],
     "faceguard calibrate: error: --save needs --rule distance"),
])
def test_options_the_mode_ignores_are_refused(argv, error):
    # Refused before any work: without --headless a door window would not return in time.
    proc = faceguard(*argv, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].startswith(error), proc.stderr
    assert proc.stderr.startswith("usage: ") and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_no_flip_embeds_the_chip_only(lfw, capsys):
    rc, out, err = run(capsys, "verify", str(lfw / ABEL_1), str(lfw / ABEL_4), "--json",
                       "--provider", "cpu", "--no-flip")
    assert rc == 0, err
    model = json.loads(out)["model"]
    assert not model.endswith("+flip")
    rc, out, _ = run(capsys, "verify", str(lfw / ABEL_1), str(lfw / ABEL_4), "--json",
                     "--provider", "cpu", "--flip")
    assert json.loads(out)["model"] == model + "+flip"


def test_train_runs_through_the_cli_and_its_errors_through_the_one_boundary(lfw, tmp_path, capsys):
    pytest.importorskip("torch")
    data = tmp_path / "people"
    for person in ("Abel_Pacheco", "Akhmed_Zakayev"):
        (data / person).mkdir(parents=True)
        for src in sorted((lfw / "images" / person).glob("*.jpg"))[:2]:
            shutil.copy(src, data / person / src.name)
    out = tmp_path / "run"
    rc, text, err = run(capsys, "train", "--data", str(data), "--out", str(out), "--epochs", "1",
                        "--max-steps", "1", "--people-per-batch", "2", "--images-per-person", "2",
                        "--no-augment")
    assert rc == 0, err
    assert f"checkpoint: {out / 'last.pt'}" in text and (out / "curves.png").is_file()
    assert err == ""                           # the progress bar draws on a terminal only
    # a second run into the same folder is a FaceGuardError: one line, exit 2
    rc, _, err = run(capsys, "train", "--data", str(data), "--out", str(out))
    assert rc == 2
    assert err.splitlines() == [f"faceguard: {out} already holds a checkpoint; pass --resume to "
                                "continue it or choose another --out folder."]
