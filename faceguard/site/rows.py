"""The site's row MACs: what a database administrator without the site key cannot forge.

Every gallery write at the site ends with ``seal(cur, key, employee_id)`` in its transaction:
the row's ``digests`` (SHA-256 of its encrypted photo and of each encrypted embedding) and its
``mac`` over the access-deciding fields (gallery/rowmac.py) with a key derived from the site
key. A door verifies the MAC of each row it pulls and the digests of each blob it fetches; a
row that fails is quarantined at that door (reported, never applied), the rest apply.

A removed person's row stays as a tombstone (``deleted``), MAC'd like any row; each door also
remembers the highest change number it saw per id (site/config.ReplicaState.seen), so an older
copy of a row restored from a dump is refused.
"""

from __future__ import annotations

import json

from faceguard.gallery import rowmac
from faceguard.gallery.ids import normalise_id

KIND = "site-person"
DAMAGED = ("its row at the site was edited without the site key (its MAC does not verify): it "
           "was not applied here; re-save the person at a door, or remove them")
OLDER = "its row at the site is older than one this door already applied (restored from a backup?)"
BLOBS = "its photo or face data at the site is not the one its row names (copied from another row?)"


def fields(employee_id: str, name: str, active: bool, deleted: bool, valid_until, digests: str,
           seq: int, photo_seq: int) -> dict:
    """The MAC'd fields of a site people row. Add a new access-deciding column here."""
    return {"id": normalise_id(employee_id), "employee_id": employee_id, "name": name,
            "active": bool(active), "deleted": bool(deleted), "valid_until": rowmac.number(valid_until),
            "digests": digests or "", "seq": int(seq), "photo_seq": int(photo_seq)}


def blob_digests(photo: bytes | None, embeddings: dict[str, bytes], factor: bytes | None = None) -> str:
    """The JSON of the blobs' digests; ``factor`` (the second factor's blob, site/factor.py) only
    when the person has one, so rows sealed before it existed keep their digests."""
    doc: dict = {"photo": rowmac.digest(photo),
                 "embeddings": {m: rowmac.digest(e) for m, e in sorted(embeddings.items())}}
    if factor is not None:
        doc["factor"] = rowmac.digest(factor)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def factor_digest(person) -> str | None:
    """The digest of the second-factor blob this MAC'd row names (None: it names none)."""
    try:
        return json.loads(person.digests).get("factor")
    except (ValueError, AttributeError):
        return None


def seal(cur, key: bytes, employee_id: str) -> None:
    """Recompute the row's digests and MAC (inside the writing transaction)."""
    cur.execute("SELECT photo FROM people WHERE employee_id=%s", (employee_id,))
    photo = cur.fetchone()[0]
    cur.execute("SELECT model_id, embedding FROM embeddings WHERE employee_id=%s", (employee_id,))
    embeddings = {m: bytes(e) for m, e in cur.fetchall()}
    # A tombstone keeps no second factor (erase means erase); a live row's is in its digests.
    cur.execute("DELETE FROM factors WHERE employee_id=%s AND EXISTS (SELECT 1 FROM people "
                "WHERE employee_id=%s AND deleted)", (employee_id, employee_id))
    cur.execute("SELECT data FROM factors WHERE employee_id=%s", (employee_id,))
    factor = cur.fetchone()
    digests = blob_digests(None if photo is None else bytes(photo), embeddings,
                           None if factor is None else bytes(factor[0]))
    cur.execute("UPDATE people SET digests=%s WHERE employee_id=%s", (digests, employee_id))
    cur.execute("SELECT employee_id, name, active, deleted, valid_until, digests, seq, photo_seq "
                "FROM people WHERE employee_id=%s", (employee_id,))
    mac = rowmac.row_mac(key, KIND, fields(*cur.fetchone()))
    cur.execute("UPDATE people SET mac=%s WHERE employee_id=%s", (mac, employee_id))


def verify(key: bytes, person) -> bool:
    """Does the MAC of this SitePerson verify?"""
    return rowmac.verify(key, KIND, fields(person.employee_id, person.name, person.active, person.deleted,
                                           person.valid_until, person.digests, person.seq,
                                           person.photo_seq), person.mac)


def blobs_match(person, photo: bytes, embeddings: dict[str, bytes]) -> bool:
    """Are the fetched blobs the ones the row's MAC'd digests name?"""
    try:
        want = json.loads(person.digests)
    except ValueError:
        return False
    got = json.loads(blob_digests(photo, embeddings))
    return want.get("photo") == got["photo"] and all(
        want.get("embeddings", {}).get(m) == d for m, d in got["embeddings"].items())
