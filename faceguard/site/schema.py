"""The site database's schema: an ordered list of migrations, like gallery/db.py's.

``site_meta['schema_version']`` records the last step applied. Each step runs in its own
transaction together with its version bump (PostgreSQL's DDL is transactional), under an
advisory lock so two doors upgrading at once take turns. A site made by a newer FaceGuard is
refused untouched.

Tables (version 1):

- ``people``: one row per employee id ever enrolled. ``seq`` is the change sequence number of
  the row's last change; a door catches up with ``WHERE seq > its cursor``. A removed person
  stays as a tombstone (``deleted``, no photo, no embedding, no name) so every door learns of
  the removal. ``photo`` is the encrypted JPEG; ``photo_seq`` the change that last set it.
- ``embeddings``: encrypted vectors per (person, model id).
- ``doors``: the doors that joined, by name.
- ``events``: the access log of every door, keyed by (door, the door's local event id, its time) so a
  push repeated after an outage inserts nothing twice. ``snapshot`` is encrypted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

# Every gallery write takes this advisory lock before it draws its sequence number, so numbers
# commit in order: a door that read up to N can never later find a change numbered below N.
GALLERY_LOCK = 0x46470001
MIGRATE_LOCK = 0x46470002
CHANNEL = "faceguard_gallery"   # NOTIFY channel: payload = the new gallery version


def _create_v1(cur) -> None:
    for statement in (
        "CREATE SEQUENCE change_seq",
        """CREATE TABLE people (
            employee_id TEXT PRIMARY KEY,
            name        TEXT NOT NULL,
            created     DOUBLE PRECISION NOT NULL,
            consent_at  DOUBLE PRECISION NOT NULL,
            active      BOOLEAN NOT NULL DEFAULT TRUE,
            deleted     BOOLEAN NOT NULL DEFAULT FALSE,
            photo       BYTEA,                  -- encrypted JPEG; NULL once removed
            photo_seq   BIGINT NOT NULL,
            seq         BIGINT NOT NULL,
            changed_by  TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX people_seq ON people(seq)",
        """CREATE TABLE embeddings (
            employee_id TEXT NOT NULL REFERENCES people ON DELETE CASCADE,
            model_id    TEXT NOT NULL,
            embedding   BYTEA NOT NULL,         -- encrypted float32 bytes
            PRIMARY KEY (employee_id, model_id))""",
        """CREATE TABLE doors (
            name      TEXT PRIMARY KEY,
            joined    DOUBLE PRECISION NOT NULL,
            last_sync DOUBLE PRECISION,
            seq       BIGINT NOT NULL DEFAULT 0)""",
        """CREATE TABLE events (
            door        TEXT NOT NULL REFERENCES doors,
            local_id    BIGINT NOT NULL,
            time        DOUBLE PRECISION NOT NULL,
            employee_id TEXT,
            name        TEXT,
            distance    DOUBLE PRECISION,
            threshold   DOUBLE PRECISION,
            decision    TEXT NOT NULL,
            reason      TEXT NOT NULL DEFAULT '',
            door_result TEXT NOT NULL DEFAULT '',
            snapshot    BYTEA,                  -- encrypted JPEG
            received    DOUBLE PRECISION NOT NULL,
            -- the time too: a door's SQLite may hand out an id again once retention emptied its log
            PRIMARY KEY (door, local_id, time))""",
        "CREATE INDEX events_time ON events(time)",
        "CREATE INDEX events_employee ON events(employee_id)",
    ):
        cur.execute(statement)


def _integrity_v2(cur) -> None:
    """Row MACs (gallery/rowmac.py) with the site key the database does not hold, over every
    access-deciding field and the digests of the face blobs; end dates travel with the row."""
    cur.execute("ALTER TABLE people ADD COLUMN valid_until DOUBLE PRECISION")
    cur.execute("ALTER TABLE people ADD COLUMN digests TEXT NOT NULL DEFAULT ''")
    cur.execute("ALTER TABLE people ADD COLUMN mac BYTEA")
    # Key rotation (rotate.py): each door's public key (MAC'd with the site key), the current
    # site key wrapped for it, and whether it was removed from the site.
    cur.execute("ALTER TABLE doors ADD COLUMN public_key BYTEA")
    cur.execute("ALTER TABLE doors ADD COLUMN key_mac BYTEA")
    cur.execute("ALTER TABLE doors ADD COLUMN wrapped_key BYTEA")
    cur.execute("ALTER TABLE doors ADD COLUMN removed BOOLEAN NOT NULL DEFAULT FALSE")


def _factors_v3(cur) -> None:
    """The second factor of each person (issue 21, site/factor.py): PIN hash, auth mode and
    learned templates as one blob encrypted with the site key; its digest is in the person's
    MAC'd digests (rows.py); a tombstone drops it."""
    cur.execute("CREATE TABLE factors (employee_id TEXT PRIMARY KEY REFERENCES people ON DELETE CASCADE, "
                "data BYTEA NOT NULL)")


Migration = tuple[int, Callable]

# Append a step for every schema change, never edit a released one: a site of any older
# version must keep upgrading step by step.
MIGRATIONS: list[Migration] = [
    (1, _create_v1),
    (2, _integrity_v2),
    (3, _factors_v3),        # the second factor travels with the person (issue 21)
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def current_version(cur) -> int:
    """The site's schema version; 0 for a database without FaceGuard tables."""
    cur.execute("SELECT to_regclass('site_meta') IS NOT NULL")
    if not cur.fetchone()[0]:
        return 0
    cur.execute("SELECT value FROM site_meta WHERE key='schema_version'")
    row = cur.fetchone()
    return int(row[0]) if row else 0


def migrate(conn, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the missing steps, one transaction each; returns the version reached. Raises
    ValueError (caught by the store) when the site is newer than ``migrations``."""
    versions = [v for v, _ in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"site migrations must be numbered 1, 2, 3, … in order, not {versions}")
    for target, step in migrations:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            current = current_version(cur)
            if current > versions[-1]:
                raise ValueError(current)
            if current >= target:
                continue
            if current == 0:
                cur.execute("CREATE TABLE IF NOT EXISTS site_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            step(cur)
            cur.execute("INSERT INTO site_meta VALUES ('schema_version', %s) ON CONFLICT (key) "
                        "DO UPDATE SET value=EXCLUDED.value", (str(target),))
        log.info("Site database updated to schema version %d", target)
    with conn.cursor() as cur:
        version = current_version(cur)
    conn.commit()
    if version > versions[-1]:
        raise ValueError(version)
    return version
