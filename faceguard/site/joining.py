"""Joining a door to a site: check the code, refuse ids that clash, register the door and its
key pair, upload the people enrolled here that the site lacks, then copy the site's gallery."""

from __future__ import annotations

import logging

import numpy as np

from faceguard.gallery import crypto
from faceguard.gallery.ids import clean_text, normalise_id
from faceguard.gallery.store import Gallery
from faceguard.site import SiteError
from faceguard.site.config import SiteConfig
from faceguard.site.replica import Replica, SyncReport
from faceguard.site.store import SiteStore

log = logging.getLogger(__name__)


def join(url: str, code: str, door: str, gallery: Gallery) -> SyncReport:
    """Join this door to the site at ``url``: check the code, register the door by name, upload
    the people enrolled here that the site lacks, then copy the site's gallery."""
    door = clean_text(door, "door name")
    existing = SiteConfig.load()
    if existing is not None:
        raise SiteError(f"This door has already joined a site (as '{existing.door}'); it cannot "
                        "join a second one.")
    with SiteStore.connect(url) as store:
        site_key = store.unlock(code)
        site_id = store.site_id()
        _refuse_id_clashes(gallery, store)
        store.register_door(door)
        store.register_door_key(site_key, door)
        SiteConfig.save_key(site_key)
        config = SiteConfig(url, site_id, door)
        config.save()
        replica = Replica(gallery, config)
        store.use_key(site_key)
        _upload_local(replica, store)
    return replica.sync()


def _refuse_id_clashes(gallery: Gallery, store: SiteStore) -> None:
    """A person enrolled here under an id the site gives to someone else (in any case or width:
    "e001" here, "E001" Lin at the site) would overwrite one of the two at every door."""
    at_site = {normalise_id(p.employee_id): p for p in store.people()}
    clashes = [f"'{p.employee_id}' ({p.name}) here is '{s.employee_id}' ({s.name}) at the site"
               for p in gallery.people(active_only=False)
               if (s := at_site.get(normalise_id(p.employee_id))) is not None
               and (s.employee_id != p.employee_id or s.name != p.name)]
    if clashes:
        raise SiteError("This door cannot join: employee ids clash with the site's (ids ignore case "
                        f"and width): {'; '.join(clashes[:5])}. Change the id here ('faceguard "
                        "gallery change-id') or remove that person, then join again.")


def _upload_local(replica: Replica, store: SiteStore) -> None:
    """The people of a door that worked alone become the site's (an id the site has is the site's)."""
    g, cipher = replica.gallery, replica.cipher
    at_site = {normalise_id(p.employee_id) for p in store.people()}
    people = [p for p in g.people(active_only=False) if normalise_id(p.employee_id) not in at_site]
    vectors: dict[str, np.ndarray] = {}
    for model_id in {p.model_id for p in people}:
        damaged: dict[str, str] = {}      # a row that fails its checks here is not uploaded
        ids, matrix = g.embeddings(model_id, active_only=False, damaged=damaged)
        vectors.update(zip(ids, matrix, strict=True))
    for p in [p for p in people if p.employee_id not in vectors]:
        log.error("%s (%s) was not uploaded to the site: their row here fails its checks", p.name, p.employee_id)
    for p in [p for p in people if p.employee_id in vectors]:
        photo = cipher.encrypt(g.photo_jpeg(p.employee_id), crypto.PHOTO)
        emb = cipher.encrypt(np.asarray(vectors[p.employee_id], np.float32).tobytes(), crypto.EMBEDDING)
        store.add_person(replica.config.door, p.name, p.employee_id, photo, emb, p.model_id,
                         p.consent_at, p.created)
        if not p.enabled:
            store.set_active(replica.config.door, p.employee_id, False)
        if p.valid_until is not None:     # issue 22 item 11: the end date travels too
            store.set_valid_until(replica.config.door, p.employee_id, p.valid_until)
    if people:
        log.info("Uploaded %d locally enrolled people to the site", len(people))
