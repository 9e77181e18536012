"""The Settings dialog's fields for what the door tells the building (its Door tab): Home
Assistant over MQTT, signed webhooks for every event, the OSDP access panel, and the "face
unlock" switch. The same keys as `faceguard settings set`; secrets are never shown: a secret
field is empty, says whether one is set, and keeps it unless something new is typed."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox

from faceguard.settings import CARD_FORMATS, Settings

CARD_FORMAT_LABELS = {"wiegand26": "26-bit Wiegand (facility:card)", "raw": "Raw card number (hex)"}


def _secret(is_set: bool) -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setPlaceholderText("set; type to replace" if is_set else "not set")
    return field


class OutputFields:
    def __init__(self, s: Settings):
        self.face_unlock = QCheckBox("Face unlock (off: the door decides nothing)")
        self.face_unlock.setChecked(s.face_unlock)
        self.mqtt_url = QLineEdit(s.mqtt.url)
        self.mqtt_url.setPlaceholderText("mqtt://192.168.1.10:1883")
        self.mqtt_door = QLineEdit(s.mqtt.door_name)
        self.mqtt_user = QLineEdit(s.mqtt.username)
        self.mqtt_password = _secret(bool(s.mqtt.password))
        self.mqtt_remote_unlock = QCheckBox("Home Assistant may unlock the door")
        self.mqtt_remote_unlock.setChecked(s.mqtt.remote_unlock)
        self.webhook_url = QLineEdit(s.webhook.url)
        self.webhook_url.setPlaceholderText("https://office.example/faceguard-events")
        self.webhook_secret = _secret(bool(s.webhook.secret))
        self.osdp_port = QLineEdit(s.osdp.port)
        self.osdp_port.setPlaceholderText("/dev/ttyUSB1")
        self.osdp_address = QSpinBox()
        self.osdp_address.setRange(0, 126)
        self.osdp_address.setValue(s.osdp.address)
        self.osdp_format = QComboBox()
        for f in CARD_FORMATS:
            self.osdp_format.addItem(CARD_FORMAT_LABELS[f], f)
        self.osdp_format.setCurrentIndex(CARD_FORMATS.index(s.osdp.card_format))

    def rows(self) -> list[tuple]:
        """(setting key, label, widget, help line), as the dialog's forms take them."""
        return [
            ("face_unlock", "", self.face_unlock, "For nights and holidays; Home Assistant's "
             "\"Face unlock\" switch sets it too."),
            ("mqtt.url", "MQTT broker", self.mqtt_url, "Every decision to Home Assistant (found "
             "by itself); empty: off."),
            ("mqtt.door_name", "Door name", self.mqtt_door, "In the topics: faceguard/<name>/…"),
            ("mqtt.username", "MQTT user", self.mqtt_user, ""),
            ("mqtt.password", "MQTT password", self.mqtt_password, ""),
            ("mqtt.remote_unlock", "", self.mqtt_remote_unlock, "A lock in Home Assistant; every "
             "remote unlock is logged with where it came from."),
            ("webhook.url", "Events web address", self.webhook_url, "Every decision, signed; "
             "nothing is lost while it is down."),
            ("webhook.secret", "Signing secret", self.webhook_secret, "At least 16 characters, "
             "shared with the receiver."),
            ("osdp.port", "Access panel port", self.osdp_port, "FaceGuard as an OSDP reader: a "
             "granted person reaches the panel as their card."),
            ("osdp.address", "Reader address", self.osdp_address, ""),
            ("osdp.card_format", "Card format", self.osdp_format, ""),
        ]

    def apply(self, s: Settings) -> None:
        """The fields' values into ``s`` (validated by the dialog with everything else)."""
        s.face_unlock = self.face_unlock.isChecked()
        s.mqtt.url = self.mqtt_url.text().strip()
        s.mqtt.door_name = self.mqtt_door.text().strip()
        s.mqtt.username = self.mqtt_user.text().strip()
        s.mqtt.password = self.mqtt_password.text() or s.mqtt.password
        s.mqtt.remote_unlock = self.mqtt_remote_unlock.isChecked()
        s.webhook.url = self.webhook_url.text().strip()
        s.webhook.secret = self.webhook_secret.text() or s.webhook.secret
        s.osdp.port = self.osdp_port.text().strip()
        s.osdp.address = self.osdp_address.value()
        s.osdp.card_format = self.osdp_format.currentData()
