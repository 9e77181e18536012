"""What a joined door keeps on its own disk.

- ``<config>/site.json`` (0600): the site's URL (without a password), its id, and this door's
  name. Its presence is what makes a door "joined".
- ``<config>/site.pgpass`` (0600), only when a password was given at join (in the URL, at the
  prompt or in PGPASSWORD): PostgreSQL's own password file format, named by the saved URL's
  ``passfile=`` so libpq reads it; a door that uses libpq's ~/.pgpass or PGPASSWORD has none.
- ``<config>/site.key`` (0600): the site key, as hex, like the gallery key beside it.
- ``<data>/site-state.json``: the replica's cursors (the last change applied, the last local
  event pushed, the change that set each person's photo, the last sync). It lives with the
  gallery it describes, so a data folder restored from a backup resumes from its own position.

Files are replaced atomically; a cursor that lags after a crash only repeats work that is safe to
repeat (applying a change again, pushing an event the site already has).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from faceguard import paths
from faceguard.atomic import write_text_atomic
from faceguard.site import SiteError

try:
    import fcntl
except ImportError:  # Windows: syncs of one door are then the user's to keep apart
    fcntl = None  # type: ignore[assignment]

CONFIG_NAME = "site.json"
PASSFILE_NAME = "site.pgpass"
KEY_NAME = "site.key"
STATE_NAME = "site-state.json"
LOCK_NAME = "site-sync.lock"


@dataclass
class SiteConfig:
    url: str
    site_id: str
    door: str

    @staticmethod
    def path() -> Path:
        return paths.config_dir() / CONFIG_NAME

    @classmethod
    def load(cls) -> SiteConfig | None:
        """This door's site, or None when it has joined none."""
        path = cls.path()
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(str(doc["url"]), str(doc["site_id"]), str(doc["door"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SiteError(f"The site settings {path} are damaged ({exc}); join the site again.") from exc

    def save(self) -> None:
        write_text_atomic(self.path(), json.dumps(asdict(self), indent=2) + "\n", 0o600)

    @staticmethod
    def key_path() -> Path:
        return paths.config_dir() / KEY_NAME

    def key(self) -> bytes:
        path = self.key_path()
        try:
            key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as exc:
            raise SiteError(f"The site key {path} is missing or damaged; join the site again "
                            "with its code.") from exc
        if len(key) != 32:
            raise SiteError(f"The site key {path} is damaged; join the site again with its code.")
        return key

    @classmethod
    def save_key(cls, key: bytes) -> None:
        write_text_atomic(cls.key_path(), key.hex() + "\n", 0o600, encoding="ascii")

    @classmethod
    def leave(cls) -> None:
        for p in (cls.path(), cls.key_path(), passfile_path()):
            p.unlink(missing_ok=True)


# -- the database password: never on disk in the URL ------------------------------------------
def passfile_path() -> Path:
    return paths.config_dir() / PASSFILE_NAME


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password or None). Only postgresql:// URLs carry
    one this way; a key=value connection string is returned as it is."""
    from urllib.parse import unquote, urlsplit, urlunsplit
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or parts.password is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), unquote(parts.password)


def with_password(url: str, password: str) -> str:
    """The URL with `password` in it, for a connection made now (kept in memory only)."""
    from urllib.parse import quote, urlsplit, urlunsplit
    parts = urlsplit(url)
    user, host = parts.netloc.rsplit("@", 1) if "@" in parts.netloc else ("", parts.netloc)
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def store_password(url: str, password: str) -> str:
    """Write `password` to FaceGuard's libpq password file (0600, one line for this site's
    host, port, database and user) and return `url` naming that file (``passfile=``), without
    the password: the URL saved in site.json then holds no secret, and libpq reads the file
    when the door connects."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    def esc(v: str) -> str:       # libpq's escaping of ':' and '\' inside a field
        return v.replace("\\", "\\\\").replace(":", "\\:")
    parts = urlsplit(url)
    fields = [parts.hostname or "*", str(parts.port or "*"), unquote(parts.path.lstrip("/")) or "*",
              unquote(parts.username or "") or "*", password]
    path = passfile_path()
    write_text_atomic(path, ":".join(esc(f) for f in fields) + "\n", 0o600)
    query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("passfile="))
    query = "&".join(filter(None, [query, f"passfile={path}"]))
    return urlunsplit(parts._replace(query=query))


@dataclass
class ReplicaState:
    site_id: str = ""
    seq: int = 0                   # the last site change applied to the local gallery
    pushed: int = 0                # the last local event id the site acknowledged
    last_sync: float | None = None
    photo_seq: dict[str, int] = field(default_factory=dict)
    # The highest change number applied per normalised id: an older copy of a row is refused.
    seen: dict[str, int] = field(default_factory=dict)
    # {employee id: why} of site rows this door refused (rows.py); shown by `site status`.
    quarantined: dict[str, str] = field(default_factory=dict)
    # {employee id: [digest of the site's second-factor blob last applied or published, {field:
    # digest of this door's copy then}]} (site/factor.py): what changed on which side since.
    factors: dict[str, list] = field(default_factory=dict)

    @staticmethod
    def path(data_dir: Path) -> Path:
        return Path(data_dir) / STATE_NAME

    @classmethod
    def load(cls, data_dir: Path, site_id: str) -> ReplicaState:
        """The replica's cursors; fresh ones for another site (a door that joined a new site
        starts over)."""
        path = cls.path(data_dir)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            state = cls(str(doc["site_id"]), int(doc["seq"]), int(doc["pushed"]), doc.get("last_sync"),
                        {str(k): int(v) for k, v in doc.get("photo_seq", {}).items()},
                        {str(k): int(v) for k, v in doc.get("seen", {}).items()},
                        {str(k): str(v) for k, v in doc.get("quarantined", {}).items()},
                        {str(k): list(v) for k, v in doc.get("factors", {}).items()})
        except FileNotFoundError:
            return cls(site_id)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SiteError(f"The replica state {path} is damaged ({exc}); delete it and run "
                            "'faceguard site sync' to copy the gallery again.") from exc
        return state if state.site_id == site_id else cls(site_id, pushed=state.pushed)

    def save(self, data_dir: Path) -> None:
        write_text_atomic(self.path(data_dir), json.dumps(asdict(self)) + "\n", 0o600)


@contextmanager
def sync_lock(data_dir: Path):
    """One sync at a time per data folder, across processes (the door's background sync and a
    `faceguard site sync` beside it); released by the OS however the holder ends."""
    if fcntl is None:
        yield
        return
    fd = os.open(Path(data_dir) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
