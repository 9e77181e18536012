"""A throw-away Mosquitto broker (Debian's package) for the MQTT tests and benchmarks/outputs.py:
a free loopback port, its own config file in a temp folder, no persistence; ``stop()`` and
``start()`` again on the same port make an outage. And ``MqttWatcher``, a client that records
every message it sees (retained ones too)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(self, folder: Path, extra: str = ""):
        """``extra``: more lines for the listener (TLS files, a password file)."""
        binary = shutil.which("mosquitto", path=os.pathsep.join(
            [os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))
        if binary is None:
            raise RuntimeError("Mosquitto is not installed (apt-get install -y mosquitto "
                               "mosquitto-clients); the MQTT tests need a real broker")
        self.port = free_port()
        self.binary, self.folder = binary, Path(folder)
        self.conf = self.folder / "mosquitto.conf"
        # Run as whoever runs the tests (as root, mosquitto would switch to its own user, who
        # cannot read files in a private temp folder).
        user = pwd.getpwuid(os.getuid()).pw_name
        self.conf.write_text(f"user {user}\nlistener {self.port} 127.0.0.1\n"
                             + (extra or "allow_anonymous true\n")
                             + "persistence false\nlog_dest stderr\nlog_type error\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto did not start: {err[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not open its port within 10 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class MqttWatcher:
    """Subscribes to ``topics`` and records (topic, payload, retain, arrival time)."""

    def __init__(self, port: int, topics=("#",)):
        import paho.mqtt.client as paho

        self.messages: list[tuple[str, bytes, bool, float]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)

        def on_connect(client, userdata, flags, rc, props=None):
            client.subscribe([(t, 1) for t in topics])

        def on_message(client, userdata, msg):
            with self._lock:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain), time.time()))

        self.client.on_connect, self.client.on_message = on_connect, on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("the MQTT watcher did not subscribe within 10 s")

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _, _ in self.messages if t == topic]

    def arrivals(self, topic: str) -> list[tuple[bytes, float]]:
        with self._lock:
            return [(p, at) for t, p, _, at in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def tls_files(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for ``host``: (ca.pem, server.pem, server.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name(host)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    for p in paths:
        p.chmod(0o644)
    return paths
