"""Issue 21 at the site: the PIN hash, auth mode and learned templates set at one door reach the
other doors (site/factor.py), covered by the site's row MAC, and are erased with the person. A
real PostgreSQL (conftest's throw-away cluster), doors as real local galleries in one process."""

from __future__ import annotations

import numpy as np
import pytest

from faceguard.gallery import pins, templates
from faceguard.gallery.recognise import zone_thresholds

RIGHT = "918273"


def near(v: np.ndarray, d: float, seed: int) -> np.ndarray:
    o = np.random.default_rng(seed).normal(size=v.shape).astype(np.float32)
    o -= v * float(o @ v)
    o /= np.linalg.norm(o)
    c = 1.0 - d / 2.0
    return (c * v + np.sqrt(1 - c * c) * o).astype(np.float32)


def test_a_pin_auth_mode_and_template_set_at_one_door_reach_the_other(site):
    front, back = site.galleries["front"], site.galleries["back"]
    model = site.pipeline.model_id
    pins.set_pin(front, "E001", RIGHT)
    pins.set_auth_mode(front, "E001", "face+pin")
    template = near(site.vecs["E001"], 0.08, 5)
    assert templates.add_template(front, "E001", template, model, zone_thresholds(site.pipeline, 1)[1],
                                  when=1234.0) is not None
    assert not pins.has_pin(back, "E001")
    site.sync("front")                                   # publishes what changed at the front door
    [(digests,)] = site.sql("SELECT digests FROM people WHERE employee_id='E001'")
    assert '"factor"' in digests
    [(blob,)] = site.sql("SELECT data FROM factors WHERE employee_id='E001'")
    assert RIGHT.encode() not in bytes(blob) and b"scrypt" not in bytes(blob)   # encrypted
    site.sync("back")
    assert pins.verify_pin(back, "E001", RIGHT) and not pins.verify_pin(back, "E001", "000000")
    assert pins.auth_mode(back, "E001") == "face+pin" and pins.auth_mode(back, "E002") == "grey-pin"
    [kept] = templates.templates(back, "E001")
    assert kept.created == pytest.approx(1234.0)
    np.testing.assert_allclose(templates.template_vectors(back, model, ["E001"])["E001"][0], template, atol=1e-5)
    # Applied once: syncing again sends and applies nothing more (no back and forth).
    seq = site.sql("SELECT seq FROM people WHERE employee_id='E001'")
    site.sync("back")
    site.sync("front")
    assert site.sql("SELECT seq FROM people WHERE employee_id='E001'") == seq
    # A change at the back door travels the other way; clearing the PIN too.
    pins.set_pin(back, "E001", None)
    site.sync("back")
    site.sync("front")
    assert not pins.has_pin(front, "E001") and pins.auth_mode(front, "E001") == "face+pin"


def test_a_second_factor_copied_onto_another_person_at_the_site_is_refused(site):
    front, back = site.galleries["front"], site.galleries["back"]
    pins.set_pin(front, "E001", RIGHT)
    pins.set_pin(front, "E002", "55555")
    site.sync("front")
    # An administrator without the site key gives Bo Lin's PIN (the blob, not the MAC'd row).
    site.sql("UPDATE factors SET data=(SELECT data FROM factors WHERE employee_id='E001') "
             "WHERE employee_id='E002'")
    site.sync("back")
    assert pins.verify_pin(back, "E001", RIGHT)
    assert not pins.has_pin(back, "E002")
    assert "E002" in site.replica("back").status()["quarantined"]
    assert site.let_in() == {"E001"}                     # failing closed: Bo is let in no more here


def test_erasing_a_person_at_the_site_erases_their_second_factor(site):
    front = site.galleries["front"]
    pins.set_pin(front, "E001", RIGHT)
    site.sync("front")
    assert site.sql("SELECT COUNT(*) FROM factors") == [(1,)]
    site.edit("front").remove("E001")
    assert site.sql("SELECT COUNT(*) FROM factors") == [(0,)]
    site.sync("back")
    assert site.galleries["back"].person("E001") is None


def test_two_doors_changing_one_person_keep_both_changes(site):
    """The front door sets Lin's PIN and syncs; the back door, before it syncs, sets her auth
    mode. A field changed at a door since it last synced is kept (a merge per field), so both
    doors end with the PIN and face+pin."""
    front, back = site.galleries["front"], site.galleries["back"]
    pins.set_pin(front, "E001", RIGHT)
    site.sync("front")
    pins.set_auth_mode(back, "E001", "face+pin")
    site.sync("back")                                    # applies the PIN, keeps its auth mode, sends both
    assert pins.verify_pin(back, "E001", RIGHT) and pins.auth_mode(back, "E001") == "face+pin"
    site.sync("front")
    assert pins.verify_pin(front, "E001", RIGHT) and pins.auth_mode(front, "E001") == "face+pin"
    seq = site.sql("SELECT seq FROM people WHERE employee_id='E001'")
    site.sync("back")
    site.sync("front")
    assert site.sql("SELECT seq FROM people WHERE employee_id='E001'") == seq   # settled
