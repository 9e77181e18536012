"""``gallery check``: is every person readable, untampered and complete (a mixin of Gallery)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faceguard.errors import GalleryError
from faceguard.gallery import crypto, integrity, rowmac
from faceguard.gallery.db import decode_jpeg

if TYPE_CHECKING:
    from faceguard.gallery.db import Database


class GalleryChecks:
    """``Gallery.check`` and its parts; uses the Gallery's ``db`` and folders."""

    db: Database
    cipher: crypto.Cipher
    photos_dir: Path
    snapshots_dir: Path

    # -- checks --------------------------------------------------------------------------------
    def check(self, model_id: str | None = None) -> list[str]:
        """Problems found, as sentences (empty = healthy): database integrity, every person has a
        readable photo and an embedding (of ``model_id`` when given) under their own data key,
        every snapshot decrypts, every file belongs to someone."""
        problems: list[str] = []
        with self.db.reading() as con:
            result = [r[0] for r in con.execute("PRAGMA integrity_check")]
            rows = con.execute("SELECT employee_id, name, photo_file, embedding, model_id, id, data_key "
                               "FROM people ORDER BY id").fetchall()
            sealed = con.execute(f"SELECT {integrity.COLUMNS} FROM people ORDER BY id").fetchall()
            buried = integrity.tombstones(con, self.cipher.mac_key)
            named = self.db.named_files(con)
            snapshots = self._snapshot_ciphers(con)
        if result != ["ok"]:
            problems.append(f"The database is damaged: {'; '.join(result[:5])}")
        for row, sealed_row in zip(rows, sealed, strict=True):
            found = self._check_person(*row[:7], model_id)  # type: ignore[call-arg]
            if (why := integrity.problem(self.cipher.mac_key, sealed_row, buried)) is not None:
                found.append(f"{row[1]} ({row[0]}): {why} of the door's matching.")
            elif not found and sealed_row[6] and \
                    rowmac.digest((self.photos_dir / row[2]).read_bytes()) != sealed_row[6]:
                found.append(f"{row[1]} ({row[0]}): the photo file is not the one enrolled "
                             "(replaced, or copied from another person).")
            problems += found
        for event_id, snap, cipher in snapshots:
            try:
                if isinstance(cipher, GalleryError):
                    raise cipher
                decode_jpeg(self.db.read_sealed(self.snapshots_dir / snap, cipher, crypto.SNAPSHOT,
                                                event_id, "snapshot"), "snapshot")
            except GalleryError as exc:
                if (self.snapshots_dir / snap).exists():   # a missing one is reported below
                    problems.append(f"Access-log event {event_id}: {exc}")
        for folder, names in named.items():
            present = {p.name for p in folder.iterdir()}
            for extra in sorted(present - names):
                problems.append(f"The file {folder / extra} belongs to no one.")
            if folder == self.snapshots_dir:   # a person without a photo is reported above
                for missing in sorted(names - present):
                    problems.append(f"The access-log snapshot {folder / missing} is missing.")
        return problems

    def refused_rows(self) -> dict[str, str]:
        """{employee id: why} of the rows the door refuses to match (row MAC or tombstone,
        integrity.py): what `gallery list` marks, without reading any face data."""
        with self.db.reading() as con:
            rows = con.execute(f"SELECT {integrity.COLUMNS} FROM people").fetchall()
            buried = integrity.tombstones(con, self.cipher.mac_key)
        return {r[1]: why for r in rows if (why := integrity.problem(self.cipher.mac_key, r, buried))}

    def _snapshot_ciphers(self, con: sqlite3.Connection) -> list[tuple]:
        """(event id, snapshot file, its cipher or the GalleryError getting it) per snapshot."""
        out: list[tuple] = []
        for event_id, snap, ref in con.execute("SELECT id, snapshot_file, snapshot_key FROM events "
                                               "WHERE snapshot_file IS NOT NULL").fetchall():
            try:
                out.append((event_id, snap, self.db.keys.snapshot_cipher(con, ref)))
            except GalleryError as exc:
                out.append((event_id, snap, exc))
        return out

    def _check_person(self, employee_id: str, name: str, photo_file: str, emb_blob: bytes, mid: str,
                      person_id: int, wrapped: bytes | None, model_id: str | None) -> list[str]:
        who = f"{name} ({employee_id})"
        problems = []
        if wrapped is None:
            problems.append(f"{who}: still encrypted the old way (no data key of their own), so "
                            "erasing them would not erase every copy; replace their photo.")
        keys = self.db.keys
        try:
            cipher = keys.person(person_id, employee_id, wrapped)
        except GalleryError as exc:
            return [*problems, f"{who}: {exc}"]
        try:
            decode_jpeg(self.db.read_sealed(self.photos_dir / photo_file, cipher, crypto.PHOTO,
                                            person_id, "photo"), "photo")
        except GalleryError as exc:
            problems.append(f"{who}: {exc}")
        try:
            vec = np.frombuffer(keys.unseal(cipher, emb_blob, crypto.EMBEDDING, person_id, "embedding"),
                                np.float32)
            if not np.isfinite(vec).all() or abs(float(np.linalg.norm(vec)) - 1) > 1e-3:
                problems.append(f"{who}: the stored embedding is not a unit vector.")
        except GalleryError as exc:
            problems.append(f"{who}: {exc}")
        if model_id and mid != model_id:
            problems.append(f"{who}: the embedding was made by model '{mid}', not the current "
                            f"'{model_id}'; re-embed the gallery.")
        return problems
