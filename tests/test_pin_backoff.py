"""Issue 21: the wrong-PIN back-off outlives a restart of the door (gallery/pin_backoff.py, schema
step 9), is covered by the row MAC once set, and is erased with the person."""

from __future__ import annotations

import io
import json
import sqlite3
import sys

import numpy as np
import pytest

from faceguard.access.records import DENIED, GRANTED, PIN, Decision
from faceguard.access.second_factor import SecondFactor
from faceguard.gallery import pins
from faceguard.gallery.db import DB_NAME
from faceguard.gallery.pin_backoff import GalleryPinBackoff, backoff

RIGHT, WRONG = "918273", "000000"


def request(tid: int, t: float, person: str = "E001") -> Decision:
    return Decision(t, PIN, person, "Ana", 0.15, 0.18, 3, "a second factor is needed", tid,
                    (100.0, 100.0, 200.0, 225.0), zone="grey", zone_score=0.15, strict=0.1, normal=0.18)


def door(monkeypatch, capsys, clip, typed: str) -> list[dict]:
    """One run of `faceguard door --headless` on the clip: a fresh process state, as after a restart."""
    from faceguard.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
    assert main(["door", "--camera", str(clip), "--headless", "--photo-check", "off", "--frames", "40",
                 "--provider", "cpu"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_three_wrong_pins_over_three_restarts_lock_the_keypad(lin_enrolled, shared_data, monkeypatch, capsys):
    """The Done-when scenario, with the door started anew for each visit: the wrong PINs add up
    across the restarts, the third locks the keypad for 60 s, and after a fourth start even the
    right PIN is refused while the lock lasts. (In memory only, each start began at 0 wrong.)"""
    from faceguard.cli import main
    from faceguard.gallery.store import Gallery

    clip = shared_data / "video" / "short_hamilton_clip.mp4"
    monkeypatch.setattr(sys, "stdin", io.StringIO(RIGHT + "\n"))
    assert main(["gallery", "set-pin", lin_enrolled]) == 0
    assert main(["gallery", "auth", lin_enrolled, "face+pin"]) == 0
    capsys.readouterr()
    reasons = []
    for _ in range(3):
        [answer] = [r for r in door(monkeypatch, capsys, clip, WRONG + "\n") if r.get("factor") == "pin"]
        assert answer["decision"] == DENIED
        reasons.append(answer["reason"])
    assert "wrong PIN (1 of 3" in reasons[0] and "wrong PIN (2 of 3" in reasons[1]
    assert "the keypad locks for 60 s" in reasons[2]
    with Gallery.open() as g:
        wrong, lockouts, until = backoff(g, lin_enrolled)
        assert (wrong, lockouts) == (0, 1) and until is not None
    rows = door(monkeypatch, capsys, clip, RIGHT + "\n")
    assert [r for r in rows if r["decision"] == GRANTED] == []
    [answer] = [r for r in rows if r.get("factor") == "pin"]
    assert answer["decision"] == DENIED and "the keypad is locked for" in answer["reason"]


def test_a_restart_keeps_the_lock_on_the_wall_clock_and_the_right_pin_clears_it(gallery):
    """Unit of the same: the count and the lock are read once per person by a new SecondFactor,
    the lock's remaining time follows the wall clock across the restart (frame times start
    anew), and the right PIN afterwards clears the stored count."""
    gallery.add_person("Ana Lima", "E001", np.full((80, 60, 3), 100, np.uint8),
                       np.eye(1, 128, 0, np.float32)[0], "m1")
    pins.set_pin(gallery, "E001", RIGHT)

    def check(person, pin) -> bool:
        return pins.verify_pin(gallery, str(person), pin)

    wall = [1000.0]
    first = SecondFactor(store=GalleryPinBackoff(gallery), wall=lambda: wall[0])
    for k in range(2):
        first.ask(request(k, 5.0 + k))
        assert first.answer(k, WRONG, 5.0 + k, check)[0].kind == DENIED
    assert backoff(gallery, "E001") == (2, 0, None)
    second = SecondFactor(store=GalleryPinBackoff(gallery), wall=lambda: wall[0])   # a restart
    second.ask(request(7, 1.0))
    d, _ = second.answer(7, WRONG, 1.0, check)
    assert "the keypad locks for 60 s" in d.reason                     # the 3rd in a row, across it
    assert backoff(gallery, "E001") == (0, 1, pytest.approx(1060.0))
    wall[0] = 1040.0                                                    # 40 s later, another restart
    third = SecondFactor(store=GalleryPinBackoff(gallery), wall=lambda: wall[0])
    assert third.locked_for("E001", 0.0) == pytest.approx(20.0)
    third.ask(request(8, 0.0))
    assert "locked for 20 s more" in third.answer(8, RIGHT, 0.0, check)[0].reason
    third.ask(request(9, 21.0))
    assert third.answer(9, RIGHT, 21.0, check)[0].kind == GRANTED
    assert backoff(gallery, "E001") == (0, 0, None)


def test_the_back_off_is_sealed_by_the_row_mac_and_erased_with_the_person(gallery):
    """Clearing a lock by SQL leaves the row damaged (never matched) instead of reopening the
    keypad to guessing; rows that never had a wrong PIN keep the MAC they had before step 9."""
    for eid in ("E001", "E002"):
        gallery.add_person(eid, eid, np.full((80, 60, 3), 100, np.uint8), np.eye(1, 128, 0, np.float32)[0], "m1")
    GalleryPinBackoff(gallery).save("E001", 0, 1, 2_000_000_000.0)
    ids, _ = gallery.embeddings("m1")
    assert sorted(ids) == ["E001", "E002"]
    con = sqlite3.connect(gallery.root / DB_NAME)
    con.execute("UPDATE people SET pin_lockouts=0, pin_locked_until=NULL WHERE employee_id='E001'")
    con.commit()
    con.close()
    damaged: dict[str, str] = {}
    ids, _ = gallery.embeddings("m1", damaged=damaged)
    assert ids == ["E002"] and "E001" in damaged
    gallery.remove("E001")
    con = sqlite3.connect(gallery.root / DB_NAME)
    assert con.execute("SELECT COUNT(*) FROM people WHERE pin_lockouts > 0 OR pin_locked_until IS NOT NULL"
                       ).fetchone()[0] == 0
    con.close()
