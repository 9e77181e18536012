"""FaceGuard as an OSDP reader (a PD) on the access panel's RS-485 line, with libosdp (the
``[osdp]`` extra). The panel decides and opens: on GRANTED the door reports a card read carrying
the person's credential number (gallery/credentials.py; ``osdp.card_format`` 26-bit Wiegand or
raw); strangers, refusals and people without a credential send nothing. The panel's LED,
buzzer, text and output commands are shown in the window's status bar.

Secure channel: with no key yet (``osdp.scbk`` empty, none received), the reader is in install
mode (it accepts the default key SCBK-D); the panel then sets its own key (KEYSET), which is kept
in the data folder (``osdp-scbk``, 0600) and used from then on, before ``osdp.scbk``. To pair
with a panel again, delete that file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import termios
import threading
import time
import tty
from pathlib import Path

import numpy as np

from faceguard.access.records import GRANTED, Decision
from faceguard.atomic import write_text_atomic
from faceguard.errors import DoorError, FaceGuardError
from faceguard.gallery.credentials import card_bits
from faceguard.outputs.delivery import Hub
from faceguard.settings import OsdpSettings

log = logging.getLogger(__name__)

KEY_FILE = "osdp-scbk"
REFRESH_S = 0.02        # libosdp wants refresh() every few tens of ms
COLORS = {0: "off", 1: "red", 2: "green", 3: "amber", 4: "blue", 5: "magenta", 6: "cyan",
          7: "white"}
BAUDS = {9600: termios.B9600, 19200: termios.B19200, 38400: termios.B38400,
         57600: termios.B57600, 115200: termios.B115200, 230400: termios.B230400}


def open_port(port: str, baud: int) -> int:
    """The serial port as a raw, non-blocking file descriptor at ``baud``."""
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise DoorError(f"Setting 'osdp.port': {port} cannot be opened ({exc.strerror}); check "
                        "the cable and that this user may use the port (group dialout).") from exc
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = BAUDS[baud]
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        termios.tcflush(fd, termios.TCIOFLUSH)    # bytes of an earlier session would confuse it
    except termios.error as exc:
        os.close(fd)
        raise DoorError(f"Setting 'osdp.port': {port} is not a serial port ({exc}).") from exc
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    return fd


def command_text(command: dict) -> str:
    """A panel command in the window's words."""
    import osdp

    kind = command.get("command")
    if kind == osdp.Command.LED:
        color = COLORS.get(command.get("on_color", 0), "?")
        return f"LED {color}" + (" (for a moment)" if command.get("temporary") else "")
    if kind == osdp.Command.Buzzer:
        count = command.get("rep_count", 0)
        if command.get("control_code", 0) == 0 or command.get("on_count", 0) == 0:
            return "buzzer off"
        return "buzzer " + ("on" if count == 0 else f"{count} beep{'s' if count != 1 else ''}")
    if kind == osdp.Command.Text:
        return f"text “{str(command.get('data', ''))[:32]}”"
    if kind == osdp.Command.Output:
        state = "on" if command.get("control_code", 0) in (2, 4, 6) else "off"
        return f"output {command.get('output_no', 0)} {state}"
    return ""


class OsdpReader:
    def __init__(self, settings: OsdpSettings, hub: Hub, root: Path):
        try:
            import osdp
            import osdp_sys
        except ImportError as exc:
            raise DoorError("The OSDP reader needs libosdp: pip install 'faceguard[osdp]'.") from exc
        self.osdp = osdp
        self.settings = settings
        self.hub = hub
        self.key_file = Path(root) / KEY_FILE
        self.fd = open_port(settings.port, settings.baud)
        key = self._key()
        flags = [] if key else [osdp.LibFlag.InstallMode]
        info = osdp.PDInfo(settings.address, _PortChannel(self.fd), scbk=key, flags=flags,
                           name="FaceGuard")
        caps = osdp.PDCapabilities([(osdp.Capability.CardDataFormat, 1, 1),
                                    (osdp.Capability.LEDControl, 1, 1),
                                    (osdp.Capability.AudibleControl, 1, 1),
                                    (osdp.Capability.TextOutput, 1, 1),
                                    (osdp.Capability.CommunicationSecurity, 1, 1)])
        osdp_sys.set_loglevel(osdp.LogLevel.Error)
        self.ctx = osdp_sys.PeripheralDevice(info.get(), capabilities=caps.get())
        self.ctx.set_command_callback(self._on_command)
        self.install_mode = key is None
        self.panel: dict[str, str] = {}      # what the panel last asked for, by kind
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="osdp-pd", daemon=True)
        self._thread.start()

    def _key(self) -> bytes | None:
        """The key the panel set last (kept), else ``osdp.scbk``, else None: install mode."""
        try:
            return bytes.fromhex(self.key_file.read_text().strip())
        except FileNotFoundError:
            return bytes.fromhex(self.settings.scbk) if self.settings.scbk else None
        except (OSError, ValueError) as exc:
            raise DoorError(f"The OSDP key file {self.key_file} cannot be read ({exc}); delete "
                            "it to pair with the panel again (install mode).") from exc

    # -- the frame thread ------------------------------------------------------------------
    def publish(self, decision: Decision, row: dict, snapshot_rgb: np.ndarray | None) -> None:
        if decision.kind != GRANTED or decision.person_id is None:
            return          # strangers, refusals, PIN asked, remote unlocks: nothing to the panel
        employee_id = str(decision.person_id)
        number = self.hub.credential_of(employee_id) if self.hub.credential_of else None
        if not number:
            log.warning("OSDP: %s has no credential number; the panel was not told", employee_id)
            self.hub.set_status("osdp", f"Panel: {decision.name or employee_id} has no card "
                                        "number (faceguard gallery credential)")
            return
        try:
            data, bits = card_bits(number, self.settings.card_format)
        except FaceGuardError as exc:
            log.error("OSDP: %s", exc)
            return
        fmt = (self.osdp.CardFormat.Wiegand if self.settings.card_format == "wiegand26" or bits == 26
               else self.osdp.CardFormat.Unspecified)
        event = {"event": self.osdp.Event.CardRead, "reader_no": 0, "direction": 0,
                 "format": fmt, "length": bits, "data": data}
        with self._lock:
            queued = self.ctx.submit_event(event)
        if not queued:
            log.error("OSDP: the card read of %s was not queued", employee_id)

    def face_unlock_changed(self, on: bool) -> None:
        pass

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        os.close(self.fd)

    # -- libosdp's thread ------------------------------------------------------------------
    def _run(self) -> None:
        shown = None
        while not self._stop.is_set():
            with self._lock:
                self.ctx.refresh()
                online = self.ctx.is_online()
                secure = self.ctx.is_sc_active()
            line = self._status(online, secure)
            if line != shown:
                self.hub.set_status("osdp", line)
                shown = line
            time.sleep(REFRESH_S)

    def _status(self, online: bool, secure: bool) -> str:
        if not online:
            return "Panel: not connected"
        words = ", ".join(v for v in self.panel.values() if v)
        link = "secure" if secure else "NOT secure"
        return f"Panel ({link}): {words}" if words else f"Panel: connected ({link})"

    def _on_command(self, command: dict) -> tuple[int, dict | None]:
        """Called by libosdp (under our lock, from refresh()); 0 accepts the command."""
        kind = command.get("command")
        if kind == self.osdp.Command.Keyset:
            return self._keyset(command), None
        text = command_text(command)
        if text:
            self.panel[text.split(" ")[0]] = text
            log.info("OSDP panel: %s", text)
        return 0, None

    def _keyset(self, command: dict) -> int:
        key = bytes(command.get("data", b""))
        if len(key) != 16:
            return -1
        try:
            write_text_atomic(self.key_file, key.hex())
        except OSError as exc:
            log.error("OSDP: the panel's new key could not be kept (%s); refused", exc)
            return -1
        log.warning("OSDP: the panel set a new secure-channel key (kept in %s)", self.key_file)
        self.install_mode = False
        return 0


class _PortChannel:
    """libosdp's channel over a non-blocking file descriptor (a serial port or a pty)."""

    def __init__(self, fd: int):
        self.id = fd
        self.fd = fd

    def read(self, max_bytes: int) -> bytes:
        try:
            return os.read(self.fd, max_bytes)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return b""       # the cable was pulled: the panel shows as not connected

    def write(self, buf: bytes) -> int:
        try:
            return os.write(self.fd, buf)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return 0

    def flush(self) -> None:
        pass
