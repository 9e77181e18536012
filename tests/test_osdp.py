"""FaceGuard as an OSDP reader: a libosdp control panel (the office's access panel) in the test
process, over a pseudo-terminal pair; the secure channel set up from install mode."""

from __future__ import annotations

import fcntl
import os
import termios
import tty
from pathlib import Path

import pytest
from conftest import CLIP, sample_decision, wait_for

from faceguard.gallery.credentials import normalise, wiegand26
from faceguard.outputs.hub import Outputs
from faceguard.settings import OsdpSettings, Settings

osdp = pytest.importorskip("osdp", reason="libosdp is in the dev extra: pip install -e '.[dev]'")
PANEL_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
ADDRESS = 5


class PtyChannel(osdp.Channel):
    def __init__(self, fd: int):
        super().__init__()
        self.fd = fd
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)

    def read(self, max_bytes: int) -> bytes:
        try:
            return os.read(self.fd, max_bytes)
        except BlockingIOError:
            return b""

    def write(self, buf: bytes) -> int:
        try:
            return os.write(self.fd, buf)
        except BlockingIOError:
            return 0

    def flush(self) -> None:
        pass


class Line:
    """The RS-485 line: the panel holds one end of a pty pair, the door opens the other by name."""

    def __init__(self):
        self.panel_fd, door_fd = os.openpty()
        tty.setraw(self.panel_fd)
        self.port = os.ttyname(door_fd)
        self._door_fd = door_fd      # kept open so the line stays up between door restarts
        self.cards: list[dict] = []

    def panel(self, install_mode: bool) -> osdp.ControlPanel:
        termios.tcflush(self.panel_fd, termios.TCIOFLUSH)   # a restarted panel starts clean
        flags = [osdp.LibFlag.InstallMode] if install_mode else []
        info = osdp.PDInfo(ADDRESS, PtyChannel(self.panel_fd), scbk=PANEL_KEY, flags=flags)
        cp = osdp.ControlPanel([info], log_level=osdp.LogLevel.Error)
        cp.start()
        return cp

    def close(self) -> None:
        os.close(self.panel_fd)
        os.close(self._door_fd)


@pytest.fixture
def line():
    pair = Line()
    yield pair
    pair.close()


def secure_and_quiet(cp) -> None:
    """The door is online over the secure channel; the set-up's status chatter is read."""
    assert cp.online_wait(ADDRESS, timeout=10) and cp.sc_wait(ADDRESS, timeout=10)
    while cp.get_event(ADDRESS, timeout=0) is not None:
        pass


def door(line: Line, root: Path, credentials: dict[str, str], card_format="wiegand26") -> Outputs:
    settings = Settings(osdp=OsdpSettings(port=line.port, address=ADDRESS, card_format=card_format))
    return Outputs(settings.validate(), root, credential_of=credentials.get)


def test_wiegand26_bits_and_parity():
    bits = int.from_bytes(wiegand26(12, 3456), "big") >> 6
    text = format(bits, "026b")
    assert text[1:9] == format(12, "08b") and text[9:25] == format(3456, "016b")
    assert text[:13].count("1") % 2 == 0 and text[13:].count("1") % 2 == 1   # even, odd parity
    assert normalise(" 012:03456 ") == "12:3456" and normalise("0x04a3b2c1") == "04A3B2C1"
    with pytest.raises(Exception, match="facility 0-255"):
        normalise("300:1")


def test_a_granted_employee_arrives_at_the_panel_as_their_card(line, tmp_path):
    outputs = door(line, tmp_path, {"E001": "12:3456"})
    cp = line.panel(install_mode=True)
    try:
        assert cp.online_wait(ADDRESS, timeout=10)
        assert cp.sc_wait(ADDRESS, timeout=10)                   # secure, from install mode
        assert wait_for(lambda: (tmp_path / "osdp-scbk").exists(), 5)
        assert (tmp_path / "osdp-scbk").read_text() == PANEL_KEY.hex()    # the panel's key, kept
        assert oct((tmp_path / "osdp-scbk").stat().st_mode & 0o777) == "0o600"
        while cp.get_event(ADDRESS, timeout=0) is not None:      # status chatter of the set-up
            pass
        outputs.publish(sample_decision(2, "DENIED"))            # a stranger: nothing
        outputs.publish(sample_decision(1))                      # E001 granted
        card = cp.get_event(ADDRESS, timeout=5)
        assert card is not None and card["event"] == osdp.Event.CardRead
        assert card["length"] == 26 and card["format"] == osdp.CardFormat.Wiegand
        assert card["data"] == wiegand26(12, 3456)
        outputs.publish(sample_decision(3))                      # granted, but no card number
        assert cp.get_event(ADDRESS, timeout=1.5) is None        # so nothing reaches the panel
        assert "no card number" in outputs.status()["osdp"]
        cp.submit_command(ADDRESS, {"command": osdp.Command.LED, "reader": 0, "led_number": 0,
                                    "control_code": 1, "on_color": osdp.CommandLEDColor.Green,
                                    "off_color": osdp.CommandLEDColor.Black, "on_count": 10,
                                    "off_count": 10, "timer_count": 10, "temporary": True})
        cp.submit_command(ADDRESS, {"command": osdp.Command.Buzzer, "reader": 0,
                                    "control_code": 2, "on_count": 5, "off_count": 5,
                                    "rep_count": 2})
        assert wait_for(lambda: "buzzer 2 beeps" in outputs.status().get("osdp", ""), 5)
        assert outputs.status()["osdp"] == "Panel (secure): LED green (for a moment), buzzer 2 beeps"
    finally:
        cp.stop()
        outputs.close()
    # The next start uses the kept key: no install mode, the panel's key only.
    outputs = door(line, tmp_path, {"E001": "12:3456"})
    cp = line.panel(install_mode=False)
    try:
        secure_and_quiet(cp)
        outputs.publish(sample_decision(1))
        card = cp.get_event(ADDRESS, timeout=5)
        assert card is not None and card["data"] == wiegand26(12, 3456)
    finally:
        cp.stop()
        outputs.close()


def test_a_raw_credential_is_sent_bit_for_bit(line, tmp_path):
    outputs = door(line, tmp_path, {"E001": "04A3B2C1"}, card_format="raw")
    cp = line.panel(install_mode=True)
    try:
        secure_and_quiet(cp)
        outputs.publish(sample_decision(1))
        card = cp.get_event(ADDRESS, timeout=5)
        assert card is not None and card["length"] == 32
        assert card["data"] == bytes.fromhex("04A3B2C1")
    finally:
        cp.stop()
        outputs.close()


def test_the_door_check_sends_mirandas_card_and_nothing_for_strangers(line, shared_data, clip_pipeline,
                                                                      lin_enrolled, capsys):
    from faceguard import cli
    from faceguard.camera import FrameSource
    from faceguard.doorcheck import DoorCheck
    from faceguard.gallery.store import Gallery

    assert cli.main(["gallery", "credential", "E001", "300:1"]) == 2          # facility > 255
    assert "facility 0-255" in capsys.readouterr().err
    assert cli.main(["gallery", "credential", "e001", "7:4242"]) == 0         # the id in any case
    assert "card number 7:4242" in capsys.readouterr().out
    cp = line.panel(install_mode=True)
    settings = Settings(photo_check=False, osdp=OsdpSettings(port=line.port, address=ADDRESS))
    try:
        with Gallery.open() as gallery:
            check = DoorCheck(clip_pipeline, gallery, settings)
            secure_and_quiet(cp)
            decisions = []
            with FrameSource(Path(shared_data) / "video" / CLIP) as src:
                while (frame := src.read()) is not None:
                    decisions += check.process(frame).decisions
            check.close()
        cards = []
        while (event := cp.get_event(ADDRESS, timeout=1)) is not None:
            if event["event"] == osdp.Event.CardRead:
                cards.append(event["data"])
    finally:
        cp.stop()
    granted = [d for d in decisions if d.kind == "GRANTED"]
    assert [d.person_id for d in granted] == ["E001"] * len(granted) and granted
    assert cards == [wiegand26(7, 4242)] * len(granted)       # one card read per grant, no more
