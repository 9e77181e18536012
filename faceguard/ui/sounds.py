"""Short sounds for GRANTED and DENIED, played without blocking and without QtMultimedia
(PySide6-Essentials does not ship it): the platform's own player, else the system beep."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys

from faceguard import paths

log = logging.getLogger(__name__)

SOUNDS = {"granted": "granted.wav", "denied": "denied.wav", "prompt": "prompt.wav"}


class SoundPlayer:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._player = next((p for p in ("paplay", "aplay", "afplay") if shutil.which(p)), None)
        self._proc: subprocess.Popen | None = None
        self.played: list[str] = []   # what was asked for, newest last (tests read it)

    def play(self, name: str) -> None:
        self.played.append(name)
        del self.played[:-20]
        if not self.enabled:
            return
        path = paths.assets_dir() / SOUNDS[name]
        if not path.is_file():
            return
        try:
            if sys.platform == "win32":
                import winsound
                winsound.PlaySound(str(path), winsound.SND_FILENAME | winsound.SND_ASYNC)
            elif self._player:
                if self._proc is not None and self._proc.poll() is None:
                    self._proc.kill()          # a new decision cuts the previous sound short
                    self._proc.wait()
                args = [self._player, "-q", str(path)] if self._player == "aplay" else [self._player, str(path)]
                self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as exc:   # no sound card is not worth a dialog
            log.info("cannot play %s: %s", path, exc)
