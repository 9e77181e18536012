"""`faceguard doctor`: what runs where — providers, model files and their hashes, folders, cameras.

Exit codes: 0 all model files check out, 1 one of them does not (listed as BAD).
"""

from __future__ import annotations

from faceguard import __version__
from faceguard.cli import common
from faceguard.cli.common import ENGINE, command
from faceguard.errors import FaceGuardError


def cmd_doctor(args) -> int:
    import onnxruntime as ort

    from faceguard import paths
    from faceguard.vision.models import load_manifest, verify_file

    print(f"FaceGuard {__version__}, onnxruntime {ort.__version__}")
    print(f"onnxruntime providers available: {', '.join(ort.get_available_providers())}")
    manifest = load_manifest()
    print(f"models: {manifest.root}")
    ok = True
    for name in manifest.sha256:
        try:
            verify_file(manifest, manifest.root / name)
            print(f"  ok   {name}")
        except FaceGuardError as exc:  # a bad file is a finding to list, not the end of the check
            ok = False
            print(f"  BAD  {exc}")
    if ok:
        pipeline = common.load_pipeline(args)
        print(f"embedding model {pipeline.model_id} runs on: {pipeline.provider}")
    print(f"data: {paths.data_dir()}\nconfig: {paths.config_dir()}\nlog: {paths.log_file()}")
    if args.cameras:
        from faceguard.camera import list_cameras

        cams = list_cameras()
        print(f"cameras: {', '.join(map(str, cams)) if cams else 'none found'}")
    return 0 if ok else 1


def register(sub) -> None:
    p = command(sub, "doctor", cmd_doctor, parents=[ENGINE],
                help="providers, model hashes, folders, cameras")
    p.add_argument("--cameras", action="store_true", help="also probe camera indices 0-5")
