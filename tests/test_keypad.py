"""Issue 21, item 2: the door window's PIN keypad: big buttons, digits never echoed, no name
shown; typing the PIN on the buttons lets the face in as the person it matched."""

from __future__ import annotations

import numpy as np
from conftest import HANG_MS, screenshot

from faceguard.settings import Settings

PIN = "918273"
NAME = "Lin-Manuel Miranda"


def all_text(widget) -> str:
    from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit

    texts = [w.text() for cls in (QLabel, QAbstractButton, QLineEdit) for w in widget.findChildren(cls)]
    return "\n".join(texts)


def test_keypad_buttons_hide_the_digits_and_send_once(qtbot):
    from PySide6.QtCore import Qt

    from faceguard.ui.keypad import BUTTON_PX, CLEAR, OK, Keypad

    pad = Keypad()
    qtbot.addWidget(pad)
    pad.ask(7)
    pad.show()
    got = []
    pad.entered.connect(lambda tid, typed: got.append((tid, typed)))
    for key in "12":
        qtbot.mouseClick(pad.buttons[key], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(pad.buttons[CLEAR], Qt.MouseButton.LeftButton)
    for key in PIN:
        qtbot.mouseClick(pad.buttons[key], Qt.MouseButton.LeftButton)
    assert pad.dots.text() == "●" * 6 and pad.typed_count == 6
    assert PIN not in all_text(pad)          # the buttons show digits; the entry never does
    assert min(b.width() for b in pad.buttons.values()) >= BUTTON_PX
    qtbot.mouseClick(pad.buttons[OK], Qt.MouseButton.LeftButton)
    assert got == [(7, PIN)] and pad.typed_count == 0 and not pad.isVisible()
    qtbot.mouseClick(pad.buttons[OK], Qt.MouseButton.LeftButton)
    assert got == [(7, PIN)]                 # nothing is asked any more: nothing sent
    pad.ask(8)                               # a badge reader types an id + Enter
    qtbot.keyClicks(pad, "E001")
    qtbot.keyClick(pad, Qt.Key.Key_Return)
    assert got[-1] == (8, "E001")


def test_face_plus_pin_on_the_clip_through_the_keypad(qtbot, pipeline, lin_enrolled, shared_data, styled):
    from PySide6.QtCore import Qt

    from faceguard.gallery import pins
    from faceguard.gallery.store import Gallery
    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.keypad import OK
    from faceguard.ui.sounds import SoundPlayer

    with Gallery.open() as g:
        pins.set_pin(g, lin_enrolled, PIN)
        pins.set_auth_mode(g, lin_enrolled, "face+pin")
    gallery = Gallery.open()
    clip = str(shared_data / "video" / "short_hamilton_clip.mp4")
    settings = Settings(camera=clip, loop_video=True, photo_check=False)
    w = DoorWindow(settings, pipeline, gallery, sounds=SoundPlayer(enabled=False), save=False)
    qtbot.addWidget(w)
    w.resize(1100, 700)
    w.show()
    try:
        w.start()
        qtbot.waitUntil(lambda: w.keypad.isVisible(), timeout=HANG_MS)
        qtbot.wait(300)                       # a few more frames painted while it waits
        shown = all_text(w) + "\n".join(w.event_rows()) + w.banner.title.text() + w.banner.detail.text()
        assert NAME not in shown and "E001" not in shown     # nobody named before the PIN
        img = screenshot(w, "door_window_pin_keypad")
        assert isinstance(img, np.ndarray)
        for key in PIN:
            qtbot.mouseClick(w.keypad.buttons[key], Qt.MouseButton.LeftButton)
        qtbot.mouseClick(w.keypad.buttons[OK], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: any(r.startswith("GRANTED") for r in w.event_rows()), timeout=HANG_MS)
        granted = next(d for d in w.decisions if d.kind == "GRANTED")
        assert (granted.person_id, granted.factor) == ("E001", "pin")
        assert w.banner.title.text() == f"Welcome, {NAME}"
    finally:
        w.stop()
        gallery.close()



def test_gallery_dialog_sets_pin_mode_and_removes_templates(qtbot, gallery, styled):
    from faceguard.gallery import pins, templates
    from faceguard.ui.gallery_dialog import GalleryDialog

    v = np.random.default_rng(1).normal(size=128).astype(np.float32)
    v /= np.linalg.norm(v)
    gallery.add_person("Ana Lima", "E001", np.full((80, 60, 3), 120, np.uint8), v, "m1")
    for s in range(2):
        near = v + 0.02 * np.random.default_rng(10 + s).normal(size=128).astype(np.float32)
        templates.add_template(gallery, "E001", near / np.linalg.norm(near), "m1", 0.18, when=1_700_000_000.0 + s,
                               snapshot_rgb=np.full((40, 30, 3), 60 * (s + 1), np.uint8))
    d = GalleryDialog(gallery, None, Settings())
    qtbot.addWidget(d)
    assert d.select("E001") and d.factor_btn.isEnabled()
    f = d.second_factor_selected(show=False)
    qtbot.addWidget(f)
    f.show()
    assert f.pin.echoMode() == f.pin.EchoMode.Password and f.pin_state.text() == "No PIN set yet."
    f.pin.setText(PIN)
    f.again.setText("918274")
    assert not f.set_pin() and "differ" in f.message.text() and not pins.has_pin(gallery, "E001")
    f.pin.setText(PIN)
    f.again.setText(PIN)
    assert f.set_pin() and pins.verify_pin(gallery, "E001", PIN) and f.pin.text() == ""
    assert PIN not in all_text(f)
    f.mode.setCurrentIndex(f.mode.findData("face+pin"))
    assert pins.auth_mode(gallery, "E001") == "face+pin"
    assert f.templates.count() == 2 and not f.templates.item(0).icon().isNull()
    screenshot(f, "second_factor_dialog")
    f.templates.setCurrentRow(0)
    assert f.remove_template() and [t.created for t in templates.templates(gallery, "E001")] == [1_700_000_001.0]
    assert f.templates.count() == 1


def test_enrol_dialog_sets_an_optional_pin(qtbot, pipeline, gallery, shared_data):
    from faceguard.gallery import pins
    from faceguard.ui.enroll_dialog import EnrollDialog

    d = EnrollDialog(pipeline, gallery, Settings(), live=False)
    qtbot.addWidget(d)
    assert d.load_photo(shared_data / "video" / "lin-manuel-miranda.png")
    d.name.setText(NAME)
    d.employee_id.setText("E001")
    d.consent.setChecked(True)
    assert d.enrol_btn.isEnabled()                      # the PIN is optional
    d.pin.setText("12")
    assert not d.enrol_btn.isEnabled() and "4 to 8 digits" in d.enrol_btn.toolTip()
    assert d.pin.echoMode() == d.pin.EchoMode.Password
    d.pin.setText(PIN)
    with qtbot.waitSignal(d.save_finished, timeout=HANG_MS) as saved:
        assert d.save()
    assert saved.args == [True]
    assert pins.verify_pin(gallery, "E001", PIN) and d.pin.text() == ""
