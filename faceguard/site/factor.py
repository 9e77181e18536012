"""The second factor at the site (issue 21): each person's PIN hash (scrypt; never the PIN), auth
mode and learned templates travel between the doors of a site like their face does.

At the site they are one blob per person in ``factors`` (schema step 3), encrypted with the site
key and bound to the person's normalised id (a blob copied onto another row does not decrypt).
Its digest is in the person's MAC'd ``digests`` (rows.py), so an administrator without the site
key cannot change, copy or restore an old one unseen; a tombstone drops it (erase means erase).

The blob is what a gallery export carries (pins.export_fields + templates.export_fields). A door
publishes a person's blob when its own copy changed since it last applied or published it (a
PIN set, an auth mode changed, a template learned or removed: ``publish_changed``, at each
sync), and applies the site's when its digest changed (``apply_row``, in the pull).
``ReplicaState.factors`` remembers, per id, the digest of the site's blob last applied or sent and
of each field of the local data then, so nothing goes back and forth, and two doors changing one
person at once keep both changes (a field changed here since is kept when the site's blob is
applied, and sent on); the same field changed at both: the door that syncs later wins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from faceguard.errors import GalleryError
from faceguard.gallery import crypto, pins, rowmac, templates
from faceguard.gallery.factor_schema import DEFAULT_AUTH_MODE
from faceguard.gallery.ids import normalise_id
from faceguard.gallery.store import Gallery
from faceguard.site import rows

PURPOSE = b"site-factor:"


def _purpose(employee_id: str) -> bytes:
    return PURPOSE + normalise_id(employee_id).encode("utf-8")


def local_fields(gallery: Gallery, employee_id: str) -> dict:
    """The person's second factor as this door holds it (the export's fields)."""
    return {**pins.export_fields(gallery, employee_id), **templates.export_fields(gallery, employee_id)}


FIELDS = ("pin_scrypt", "auth_mode", "templates")
NONE_SET: dict = {"pin_scrypt": None, "auth_mode": DEFAULT_AUTH_MODE, "templates": []}


def fingerprint(fields: dict) -> dict[str, str]:
    """A digest per field as this door holds it (what changed here since: ``publish_changed``)."""
    return {k: hashlib.sha256(json.dumps(fields.get(k), sort_keys=True).encode("utf-8")).hexdigest()
            for k in FIELDS}


def seal(cipher: crypto.Cipher, employee_id: str, fields: dict) -> bytes:
    return cipher.encrypt(json.dumps(fields, sort_keys=True).encode("utf-8"), _purpose(employee_id))


def open_blob(cipher: crypto.Cipher, employee_id: str, blob: bytes) -> dict:
    """The fields of a site blob; GalleryError when it was made for another person or damaged."""
    fields = json.loads(cipher.decrypt(blob, _purpose(employee_id), "second factor from the site"))
    if not isinstance(fields, dict):
        raise GalleryError(f"The second factor of employee id '{employee_id}' at the site is damaged.")
    return fields


def apply(gallery: Gallery, employee_id: str, fields: dict, model_id: str, anchor: float) -> None:
    """Make the local person's PIN hash, auth mode and templates the site's (templates of
    another model, or not anchored to the local enrolment photo, are dropped, as on import)."""
    pins.import_fields(gallery, employee_id, fields)
    for t in templates.templates(gallery, employee_id):
        templates.remove_template(gallery, employee_id, t.id)
    templates.import_fields(gallery, employee_id, fields, model_id, anchor)


def digest(blob: bytes | None) -> str:
    return rowmac.digest(blob)


def is_default(fields: dict) -> bool:
    """Nothing to carry: no PIN, the default auth mode, no templates."""
    return not fields.get("pin_scrypt") and fields.get("auth_mode") == DEFAULT_AUTH_MODE and not fields.get("templates")


def anchor() -> float:
    """normal(1) of this door's model: a template is kept only that near the enrolment photo."""
    from faceguard.settings import load_settings
    from faceguard.vision.models import load_manifest

    return load_manifest().embedder(load_settings().model_id or None).threshold_for(1, "visit-normal")


# -- the site's side (one SiteStore) -------------------------------------------------------------
def publish(store, door: str, employee_id: str, blob: bytes) -> int:
    """Store the person's blob at the site as a gallery change (new change number, row MAC);
    returns the change number. NotAtSiteError when the person is not enrolled there."""
    with store._gallery_change() as (cur, seq):
        stored = store._existing(cur, employee_id)
        cur.execute("INSERT INTO factors VALUES (%s, %s) ON CONFLICT (employee_id) DO UPDATE SET data=EXCLUDED.data",
                    (stored, blob))
        cur.execute("UPDATE people SET seq=%s, changed_by=%s WHERE employee_id=%s", (seq, door, stored))
        store._seal(cur, stored)
    return seq


def fetch(store, employee_ids: Iterable[str]) -> dict[str, bytes]:
    """{employee id: the site's blob} of those who have one."""
    ids = list(employee_ids)
    if not ids:
        return {}
    with store._tx() as cur:
        cur.execute("SELECT employee_id, data FROM factors WHERE employee_id = ANY(%s)", (ids,))
        return {eid: bytes(data) for eid, data in cur.fetchall()}


# -- the door's side (site/replica.Replica) -----------------------------------------------------
def news(row, state) -> bool:
    """Does this site row name a second-factor blob the door has not applied yet?"""
    want = rows.factor_digest(row)
    return not row.deleted and want is not None and want != state.factors.get(row.employee_id, [None])[0]


def apply_row(replica, row, blob: bytes | None, state) -> None:
    """Inside the pull, after the row itself was applied: its second factor, when new. A field
    changed at this door since it last applied or sent the person's blob (a PIN set here while
    another door set the auth mode) is kept, and goes to the site with the next publication: a
    three-way merge per field, so neither door's change is lost."""
    eid = row.employee_id
    if row.deleted:
        state.factors.pop(eid, None)
        return
    if blob is None:
        return
    site = open_blob(replica.cipher, eid, blob)
    local = local_fields(replica.gallery, eid)
    known = state.factors[eid][1] if eid in state.factors else fingerprint(NONE_SET)
    mine = fingerprint(local)
    kept = {k for k in FIELDS if mine[k] != known.get(k)}
    apply(replica.gallery, eid, {**site, **{k: local[k] for k in kept}}, replica.model_id, anchor())
    after = fingerprint(local_fields(replica.gallery, eid))
    state.factors[eid] = [digest(blob), {k: fingerprint(site)[k] if k in kept else after[k] for k in FIELDS}]


def publish_changed(replica, store) -> int:
    """Send the second factor of each person whose local copy changed since this door last
    applied or sent it (a PIN set here, a template learned); returns how many were sent."""
    from faceguard.site.config import sync_lock
    from faceguard.site.store import NotAtSiteError

    sent = 0
    with sync_lock(replica.root):
        state = replica.state()
        for person in replica.gallery.people(active_only=False):
            eid = person.employee_id
            fields = local_fields(replica.gallery, eid)
            known = state.factors.get(eid)
            if (known[1] == fingerprint(fields)) if known is not None else is_default(fields):
                continue                         # nothing changed here since

            blob = seal(replica.cipher, eid, fields)
            try:
                publish(store, replica.config.door, eid, blob)
            except NotAtSiteError:
                continue                     # enrolled at this door only
            state.factors[eid] = [digest(blob), fingerprint(fields)]
            state.save(replica.root)
            sent += 1
    return sent
