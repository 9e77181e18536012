"""Learned templates (issue 21): up to three extra embeddings of a person, each from a visit the
second factor confirmed (right PIN, photo check passed), taken at the door's own camera.

Anchored: a template is kept only when it lies within ``anchor`` (the normal threshold for one
person) of the ENROLMENT embedding itself, never of another template, so a chain of PIN-confirmed
visits cannot drift the person's face towards someone else's. At most ``MAX_TEMPLATES``; a new one
replaces the oldest. Each template's embedding (and its face snapshot) is sealed with the
person's data key, bound to the template's row, and erased with the person (store.remove).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from faceguard.errors import GalleryError
from faceguard.gallery import keys as keyring
from faceguard.gallery.db import decode_jpeg, encode_jpeg
from faceguard.gallery.person import check_embedding

MAX_TEMPLATES = 3
TEMPLATE_PURPOSE = b"template"
SNAPSHOT_PURPOSE = b"template-snapshot"
SNAPSHOT_MAX_SIDE = 200

if TYPE_CHECKING:   # types only: the callers hand in the gallery
    from faceguard.gallery.store import Gallery


@dataclass(frozen=True)
class Template:
    id: int
    created: float
    model_id: str
    has_snapshot: bool


def _person(con, gallery: Gallery, employee_id: str):
    stored, _ = gallery._resolve(con, employee_id)
    person_id, cipher, _ = gallery._cipher(con, stored)
    if cipher is None:
        raise GalleryError(f"Employee id '{stored}' is still encrypted the old way; replace their photo first.")
    return stored, person_id, cipher


def _purpose(purpose: bytes, person_id: int) -> bytes:
    return purpose + b":" + str(int(person_id)).encode()


def add_template(gallery: Gallery, employee_id: str, embedding: np.ndarray, model_id: str, anchor: float,
                 snapshot_rgb: np.ndarray | None = None, when: float | None = None) -> int | None:
    """Keep ``embedding`` as a template of the person when it lies within ``anchor`` of their
    enrolment embedding (of the same model); returns the new row id, or None when it does not."""
    vec = check_embedding(embedding)
    jpeg = None if snapshot_rgb is None else encode_jpeg(snapshot_rgb, SNAPSHOT_MAX_SIDE)
    with gallery.db.change() as change:
        con = change.con
        stored, person_id, cipher = _person(con, gallery, employee_id)
        row = con.execute("SELECT embedding, model_id, data_key FROM people WHERE id=?", (person_id,)).fetchone()
        if row[1] != model_id:
            return None
        enrolled = np.frombuffer(gallery._embedding(stored, row[0], person_id, row[2]), np.float32)
        if float(np.sum((enrolled - vec) ** 2)) > anchor:
            return None
        old = [r[0] for r in con.execute("SELECT id FROM templates WHERE person_id=? ORDER BY created, id",
                                         (person_id,))]
        for tid in old[:max(0, len(old) - MAX_TEMPLATES + 1)]:
            con.execute("DELETE FROM templates WHERE id=?", (tid,))
        tid = int(con.execute("INSERT INTO templates (person_id, created, model_id, embedding) VALUES (?,?,?,?)",
                              (person_id, when or time.time(), model_id, b"")).lastrowid or 0)
        con.execute("UPDATE templates SET embedding=?, snapshot=? WHERE id=?",
                    (cipher.encrypt(vec.tobytes(), keyring.bound(_purpose(TEMPLATE_PURPOSE, person_id), tid)),
                     None if jpeg is None else
                     cipher.encrypt(jpeg, keyring.bound(_purpose(SNAPSHOT_PURPOSE, person_id), tid)), tid))
    return tid


def templates(gallery: Gallery, employee_id: str) -> list[Template]:
    """The person's templates, oldest first."""
    with gallery.db.reading() as con:
        _, person_id, _ = _person(con, gallery, employee_id)
        rows = con.execute("SELECT id, created, model_id, snapshot IS NOT NULL FROM templates "
                           "WHERE person_id=? ORDER BY created, id", (person_id,)).fetchall()
    return [Template(r[0], r[1], r[2], bool(r[3])) for r in rows]


def snapshot(gallery: Gallery, employee_id: str, template_id: int) -> np.ndarray | None:
    """The face snapshot of the visit a template came from (RGB), or None."""
    with gallery.db.reading() as con:
        _, person_id, cipher = _person(con, gallery, employee_id)
        row = con.execute("SELECT snapshot FROM templates WHERE id=? AND person_id=?",
                          (template_id, person_id)).fetchone()
    if row is None or row[0] is None:
        return None
    jpeg = cipher.decrypt(bytes(row[0]), keyring.bound(_purpose(SNAPSHOT_PURPOSE, person_id), template_id),
                          "template snapshot")
    return decode_jpeg(jpeg, "template snapshot")


def remove_template(gallery: Gallery, employee_id: str, template_id: int) -> None:
    with gallery.db.change() as change:
        _, person_id, _ = _person(change.con, gallery, employee_id)
        change.con.execute("DELETE FROM templates WHERE id=? AND person_id=?", (template_id, person_id))
    gallery.db.checkpoint()


def template_vectors(gallery: Gallery, model_id: str, employee_ids: list[str],
                     damaged: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """{employee id: [k, D] templates of ``model_id``} for those who have any. A template that
    does not decrypt is left out (and named in ``damaged`` when given)."""
    wanted = set(employee_ids)
    out: dict[str, list[np.ndarray]] = {}
    with gallery.db.reading() as con:
        rows = con.execute("SELECT p.employee_id, p.id, p.data_key, t.id, t.embedding FROM templates t "
                           "JOIN people p ON p.id = t.person_id WHERE t.model_id=? ORDER BY t.id",
                           (model_id,)).fetchall()
    for employee_id, person_id, wrapped, tid, blob in rows:
        if employee_id not in wanted:
            continue
        try:
            cipher = gallery.db.keys.person(person_id, employee_id, wrapped)
            if cipher is None:
                continue
            vec = np.frombuffer(cipher.decrypt(bytes(blob), keyring.bound(_purpose(TEMPLATE_PURPOSE, person_id),
                                                                         tid), "template"), np.float32)
        except GalleryError as exc:
            if damaged is not None:
                damaged[employee_id] = f"a learned template: {exc}"
            continue
        out.setdefault(employee_id, []).append(vec)
    return {k: np.stack(v) for k, v in out.items()}


def export_fields(gallery: Gallery, employee_id: str) -> dict:
    """Templates for a gallery export: embeddings (model-bound) and dates; no snapshots."""
    with gallery.db.reading() as con:
        stored, _ = gallery._resolve(con, employee_id)
    rows = templates(gallery, stored)
    vecs = {}
    with gallery.db.reading() as con:
        _, person_id, cipher = _person(con, gallery, stored)
        for t in rows:
            blob = con.execute("SELECT embedding FROM templates WHERE id=?", (t.id,)).fetchone()[0]
            vecs[t.id] = np.frombuffer(cipher.decrypt(bytes(blob), keyring.bound(
                _purpose(TEMPLATE_PURPOSE, person_id), t.id), "template"), np.float32)
    return {"templates": [{"created": t.created, "model_id": t.model_id,
                           "embedding": [round(float(x), 7) for x in vecs[t.id]]} for t in rows]}


def import_fields(gallery: Gallery, employee_id: str, entry: dict, model_id: str, anchor: float) -> None:
    """Templates from an export, when made by this door's model and anchored to the imported
    enrolment photo (a template of another model cannot be compared; it is dropped)."""
    for t in entry.get("templates") or []:
        if isinstance(t, dict) and t.get("model_id") == model_id:
            vec = np.asarray(t["embedding"], np.float32)
            vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
            add_template(gallery, employee_id, vec, model_id, anchor, when=float(t["created"]))

