"""The door's MQTT output against a real Mosquitto (conftest's fixture): events, retained state
and availability with a last will, Home Assistant discovery, the "face unlock" switch and the
lock, a broker outage that loses and doubles nothing, and the issue's "done when" run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import CLIP, REPO, mqtt_watcher, sample_decision, wait_for

from faceguard.access.records import DENIED, GRANTED
from faceguard.outputs import homeassistant as ha
from faceguard.outputs.hub import Outputs
from faceguard.settings import MqttSettings, Settings

# Every field we publish, per component, as Home Assistant's MQTT docs name them
# (event.mqtt, sensor.mqtt, switch.mqtt, lock.mqtt, image.mqtt; device and origin from the
# discovery page). A field not in HA's schema makes discovery fail for the whole entity.
COMMON = {"name", "unique_id", "availability_topic", "payload_available", "payload_not_available",
          "device", "origin", "icon"}
SHAPES = {
    "event": COMMON | {"state_topic", "event_types"},
    "sensor": COMMON | {"state_topic", "value_template", "json_attributes_topic"},
    "switch": COMMON | {"command_topic", "state_topic", "payload_on", "payload_off", "state_on",
                        "state_off"},
    "lock": COMMON | {"command_topic", "state_topic", "payload_lock", "payload_unlock",
                      "state_locked", "state_unlocked"},
    "image": COMMON | {"image_topic", "content_type"},
}
REQUIRED = {"event": {"state_topic", "event_types"}, "sensor": {"state_topic"},
            "switch": {"command_topic"}, "lock": {"command_topic"}, "image": {"image_topic"}}
DEVICE = {"identifiers", "name", "manufacturer", "model", "sw_version"}




def mqtt_outputs(url: str, root, **kw) -> Outputs:
    return Outputs(Settings(mqtt=MqttSettings(url=url, door_name="front", **kw)).validate(), root)




def test_discovery_payloads_have_home_assistants_shapes():
    t = ha.Topics("front")
    configs = ha.discovery(t, remote_unlock=True, snapshot=True)
    assert sorted(configs) == [
        "homeassistant/event/faceguard_front/decision/config",
        "homeassistant/image/faceguard_front/last_face/config",
        "homeassistant/lock/faceguard_front/door/config",
        "homeassistant/sensor/faceguard_front/last_person/config",
        "homeassistant/switch/faceguard_front/face_unlock/config"]
    unique_ids = set()
    for topic, payload in configs.items():
        component = topic.split("/")[1]
        assert payload is not None
        assert set(payload) <= SHAPES[component], (component, set(payload) - SHAPES[component])
        assert REQUIRED[component] <= set(payload)
        assert set(payload["device"]) == DEVICE and payload["device"]["identifiers"] == ["faceguard_front"]
        assert payload["origin"]["name"] == "FaceGuard"
        assert payload["availability_topic"] == "faceguard/front/availability"
        assert (payload["payload_available"], payload["payload_not_available"]) == ("online", "offline")
        unique_ids.add(payload["unique_id"])
    assert len(unique_ids) == 5                                       # stable and distinct
    event = configs["homeassistant/event/faceguard_front/decision/config"]
    assert event["event_types"] == ["granted", "denied", "pin", "attack"]
    assert event["state_topic"] == "faceguard/front/event"
    lock = configs["homeassistant/lock/faceguard_front/door/config"]
    assert (lock["payload_unlock"], lock["state_locked"], lock["state_unlocked"]) == ("UNLOCK", "LOCKED", "UNLOCKED")
    image = configs["homeassistant/image/faceguard_front/last_face/config"]
    assert image["content_type"] == "image/jpeg" and image["image_topic"] == "faceguard/front/snapshot"
    # off unless enabled: the lock and the image are removed (an empty retained config)
    off = ha.discovery(t, remote_unlock=False, snapshot=False)
    assert off["homeassistant/lock/faceguard_front/door/config"] is None
    assert off["homeassistant/image/faceguard_front/last_face/config"] is None


def test_events_state_availability_and_discovery_on_a_real_broker(mosquitto, tmp_path):
    watcher = mqtt_watcher(mosquitto.port)
    outputs = mqtt_outputs(mosquitto.url, tmp_path)
    keys = [outputs.publish(sample_decision(1)), outputs.publish(sample_decision(2, DENIED))]
    assert wait_for(lambda: len(watcher.on("faceguard/front/event")) == 2, 10)
    events = [json.loads(p) for p in watcher.on("faceguard/front/event")]
    assert [e["event_type"] for e in events] == ["granted", "denied"]
    assert [e["id"] for e in events] == keys
    assert events[0]["person_id"] == "E001" and events[0]["door_name"] == "front"
    assert set(events[0]) >= {"time", "decision", "mode", "person_id", "name", "distance",
                              "threshold", "frames_used", "reason", "track_id", "box"}
    assert watcher.on("faceguard/front/availability")[-1] == b"online"
    assert watcher.on("faceguard/front/face_unlock")[-1] == b"ON"
    outputs.close()
    watcher.close()
    late = mqtt_watcher(mosquitto.port)       # joins later: sees only what is retained
    assert wait_for(lambda: late.on("faceguard/front/availability") == [b"offline"], 5)
    assert json.loads(late.on("faceguard/front/state")[-1])["decision"] == "DENIED"
    assert late.on("faceguard/front/event") == []                # events are not retained
    config = late.on("homeassistant/switch/faceguard_front/face_unlock/config")
    assert json.loads(config[-1])["command_topic"] == "faceguard/front/face_unlock/set"
    assert late.on("homeassistant/lock/faceguard_front/door/config") == []   # off: no lock
    late.close()


def test_the_last_will_says_offline_when_the_door_dies(mosquitto, tmp_path):
    script = (f"import time; from faceguard.outputs.hub import Outputs; "
              f"from faceguard.settings import Settings, MqttSettings; "
              f"o = Outputs(Settings(mqtt=MqttSettings(url='{mosquitto.url}', door_name='front')), "
              f"__import__('pathlib').Path(r'{tmp_path}')); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    watcher = mqtt_watcher(mosquitto.port, ["faceguard/front/availability"])
    try:
        assert wait_for(lambda: b"online" in watcher.on("faceguard/front/availability"), 20)
        proc.kill()                                # no clean stop: the broker's will speaks
        assert wait_for(lambda: watcher.on("faceguard/front/availability")[-1] == b"offline", 60)
    finally:
        proc.kill()
        watcher.close()


def test_a_broker_outage_loses_and_doubles_nothing(mosquitto, tmp_path):
    watcher = mqtt_watcher(mosquitto.port, ["faceguard/front/event"])
    outputs = mqtt_outputs(mosquitto.url, tmp_path)
    keys = [outputs.publish(sample_decision(i)) for i in range(5)]
    assert wait_for(lambda: len(watcher.on("faceguard/front/event")) == 5, 10)
    watcher.close()
    mosquitto.stop()                                   # the broker goes away mid-run
    started = time.perf_counter()
    keys += [outputs.publish(sample_decision(i)) for i in range(5, 20)]
    assert (time.perf_counter() - started) / 15 < 0.05   # a frame never waits for the broker
    assert outputs.outbox.pending("mqtt") >= 30          # event + state each, kept
    time.sleep(2)
    mosquitto.start()
    watcher = mqtt_watcher(mosquitto.port, ["faceguard/front/event"])
    assert wait_for(lambda: outputs.outbox.pending("mqtt") == 0, 30)
    time.sleep(0.5)
    outputs.close()
    got = [json.loads(p)["id"] for p in watcher.on("faceguard/front/event")]
    watcher.close()
    assert got == keys[5:]                  # the outage's events, in order, each once


def test_switch_lock_and_home_assistants_restart(mosquitto, tmp_path):
    outputs = mqtt_outputs(mosquitto.url, tmp_path, remote_unlock=True)
    watcher = mqtt_watcher(mosquitto.port)
    config = "homeassistant/lock/faceguard_front/door/config"
    assert wait_for(lambda: len(watcher.on(config)) == 1, 10)
    watcher.client.publish("faceguard/front/face_unlock/set", "OFF", qos=1)
    watcher.client.publish("faceguard/front/lock/set", "UNLOCK", qos=1)
    assert wait_for(lambda: len(outputs.commands.queue) == 2, 10)
    face_unlock, unlock = outputs.take_commands()
    assert (face_unlock.what, face_unlock.value) == ("face_unlock", False)
    assert unlock.what == "unlock" and "MQTT" in unlock.value and "lock/set" in unlock.value
    assert wait_for(lambda: watcher.on("faceguard/front/face_unlock")[-1:] == [b"OFF"], 5)
    assert wait_for(lambda: watcher.on("faceguard/front/lock")[-1:] == [b"UNLOCKED"], 5)
    watcher.client.publish("homeassistant/status", "online", qos=1)   # HA restarted
    assert wait_for(lambda: len(watcher.on(config)) == 2, 10)          # configs again
    outputs.close()
    watcher.close()


def test_remote_unlock_is_refused_unless_enabled(mosquitto, tmp_path):
    outputs = mqtt_outputs(mosquitto.url, tmp_path)
    watcher = mqtt_watcher(mosquitto.port)
    assert wait_for(lambda: watcher.on("faceguard/front/availability")[-1:] == [b"online"], 10)
    watcher.client.publish("faceguard/front/lock/set", "UNLOCK", qos=1)
    watcher.client.publish("faceguard/front/face_unlock/set", "ON", qos=1)
    assert wait_for(lambda: len(outputs.commands.queue) == 1, 10)
    time.sleep(0.3)
    assert [c.what for c in outputs.take_commands()] == ["face_unlock"]   # no unlock
    outputs.close()
    watcher.close()


def test_done_when_a_headless_door_run_reaches_home_assistant(mosquitto, shared_data, lin_enrolled):
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def faceguard(*args) -> subprocess.CompletedProcess:
        out = subprocess.run([sys.executable, "-m", "faceguard", *map(str, args)], env=env,
                             cwd=REPO, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{args}: {out.stdout}\n{out.stderr}"
        return out

    faceguard("settings", "set", "mqtt.url", mosquitto.url)
    watcher = mqtt_watcher(mosquitto.port, ["faceguard/#"])
    run = faceguard("door", "--camera", Path(shared_data) / "video" / CLIP, "--headless",
                    "--photo-check", "off", "--frames", "40")
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert any(r["decision"] == "GRANTED" and r["person_id"] == lin_enrolled for r in lines)
    events = [json.loads(p) for p in watcher.on("faceguard/door/event")]
    watcher.close()
    assert any(e["decision"] == "GRANTED" and e["person_id"] == "E001" for e in events)
    late = mqtt_watcher(mosquitto.port)
    assert wait_for(lambda: late.on("faceguard/door/availability") == [b"offline"], 5)
    config = late.on("homeassistant/event/faceguard_door/decision/config")
    assert config and json.loads(config[-1])["state_topic"] == "faceguard/door/event"
    late.close()


def test_face_unlock_off_decides_nothing_and_a_remote_unlock_is_logged(shared_data, clip_pipeline,
                                                                       lin_enrolled):
    from faceguard.camera import FrameSource
    from faceguard.doorcheck import FACE_UNLOCK_OFF, DoorCheck
    from faceguard.gallery.events import EventLog
    from faceguard.gallery.store import Gallery
    from faceguard.settings import load_settings

    with Gallery.open() as gallery:
        outputs = Outputs(Settings(), gallery.root)
        check = DoorCheck(clip_pipeline, gallery, Settings(photo_check=False), outputs=outputs)
        outputs.command("face_unlock", False)          # Home Assistant's switch: off
        reports = []
        with FrameSource(Path(shared_data) / "video" / CLIP) as src:
            for _ in range(40):
                reports.append(check.process(src.read()))
        assert load_settings().face_unlock is False      # remembered for the next start
        assert not [d for r in reports for d in r.decisions]          # Miranda is not let in
        statuses = {f.status for r in reports for f in r.faces}
        assert statuses == {FACE_UNLOCK_OFF}                            # and the screen says why
        outputs.command("unlock", "MQTT (broker 127.0.0.1:1883, topic faceguard/door/lock/set)")
        with FrameSource(Path(shared_data) / "video" / CLIP) as src:
            report = check.process(src.read())
        check.close()
        assert [(d.kind, d.name) for d in report.decisions] == [(GRANTED, "remote unlock")]
        rows = EventLog(gallery).events(limit=None)
    assert len(rows) == 1 and "remote unlock from MQTT (broker 127.0.0.1:1883" in rows[0].reason


def test_the_window_says_face_unlock_is_off(qtbot):
    from conftest import NoFaces, fake_window

    from faceguard.ui.outputs_status import FACE_UNLOCK_OFF_TEXT

    class Off(NoFaces):
        face_unlock = False

        class outputs:  # noqa: N801  (what the window reads of the door check's outputs)
            @staticmethod
            def status():
                return {"osdp": "Panel: LED green, buzzer 1 beep"}

    w = fake_window(qtbot, {"in": True}, make_check=Off)
    w.start()
    qtbot.waitUntil(lambda: w.outputs_label.text() != "", timeout=10000)
    assert not w.outputs_label.isHidden()
    assert w.outputs_label.text() == f"{FACE_UNLOCK_OFF_TEXT} · Panel: LED green, buzzer 1 beep"
    w.close()


def test_a_door_stopped_while_the_broker_is_away_sends_the_rest_at_its_next_start(mosquitto, tmp_path):
    outputs = mqtt_outputs(mosquitto.url, tmp_path)
    assert wait_for(lambda: outputs.status().get("mqtt", "").startswith("MQTT: connected"), 10)
    mosquitto.stop()
    keys = [outputs.publish(sample_decision(i)) for i in range(3)]
    started = time.monotonic()
    outputs.close()                                  # the door stops: the broker is still away
    assert time.monotonic() - started < 5
    mosquitto.start()
    watcher = mqtt_watcher(mosquitto.port, ["faceguard/front/event"])
    outputs = mqtt_outputs(mosquitto.url, tmp_path)  # the next start, same data folder
    assert wait_for(lambda: len(watcher.on("faceguard/front/event")) == 3, 15)
    outputs.close()
    watcher.close()
    assert [json.loads(p)["id"] for p in watcher.on("faceguard/front/event")] == keys


def test_the_snapshot_is_sent_only_when_enabled(mosquitto, tmp_path):
    import numpy as np

    face = np.zeros((64, 48, 3), np.uint8)
    face[16:48, 12:36] = (200, 150, 120)
    watcher = mqtt_watcher(mosquitto.port, ["faceguard/front/#"])
    off = mqtt_outputs(mosquitto.url, tmp_path / "off")
    off.publish(sample_decision(1), face)
    assert wait_for(lambda: len(watcher.on("faceguard/front/event")) == 1, 10)
    off.close()
    on = mqtt_outputs(mosquitto.url, tmp_path / "on", snapshot=True)
    on.publish(sample_decision(2), face)
    assert wait_for(lambda: len(watcher.on("faceguard/front/snapshot")) == 1, 10)
    on.close()
    watcher.close()
    jpeg = watcher.on("faceguard/front/snapshot")[0]
    assert jpeg[:2] == b"\xff\xd8"                                 # a JPEG, raw bytes (HA's image)
    events = [json.loads(p) for p in watcher.on("faceguard/front/event")]
    assert [e["person_id"] for e in events] == ["E001", "E002"]
    assert all("snapshot" not in e for e in events)                # never inside the event


def test_tls_with_a_ca_file_and_a_password(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from mosquitto import Mosquitto, tls_files

    folder = tmp_path / "broker"
    folder.mkdir()
    ca, cert, key = tls_files(folder)
    passwd = folder / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "door", "door-pass"], check=True,
                   capture_output=True)
    passwd.chmod(0o600)
    broker = Mosquitto(folder, f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
                               f"allow_anonymous false\npassword_file {passwd}\n")
    broker.start()
    url = f"mqtts://127.0.0.1:{broker.port}"
    try:
        wrong = Outputs(Settings(mqtt=MqttSettings(url=url, door_name="front", username="door",
                                                   password="wrong", ca_file=str(ca))),
                        tmp_path / "wrong")
        assert wait_for(lambda: "refused" in wrong.status().get("mqtt", ""), 10)
        wrong.close()
        right = Outputs(Settings(mqtt=MqttSettings(url=url, door_name="front", username="door",
                                                   password="door-pass", ca_file=str(ca))),
                        tmp_path / "right")
        right.publish(sample_decision(1))
        assert wait_for(lambda: right.outbox.pending() == 0, 10), right.status()
        assert right.status()["mqtt"] == f"MQTT: connected to 127.0.0.1:{broker.port}"
        right.close()
    finally:
        broker.stop()


def test_an_attack_suspected_denial_is_sent_as_an_attack_event():
    """Issue 20's third failed photo check reaches Home Assistant's event entity as "attack"."""
    from dataclasses import replace

    from faceguard.outputs.events import event_dict

    attack = replace(sample_decision(1, "DENIED"), reason="attack suspected: the head did not follow")
    assert event_dict(attack, "front", "k1")["event_type"] == "attack"
    assert event_dict(sample_decision(2, "DENIED"), "front", "k2")["event_type"] == "denied"
