"""``SiteGallery``: a door's gallery whose edits are made at the site first, then pulled.

While the site is unreachable the edits are refused, and the door keeps deciding from its
replica. Ids typed in another case or width find the site's person (ids.normalise_id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from faceguard.errors import GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.db import Database, encode_jpeg
from faceguard.gallery.ids import clean_id, clean_text
from faceguard.gallery.person import check_embedding
from faceguard.gallery.store import PHOTO_MAX_SIDE, Gallery, Person
from faceguard.site import SiteError, SiteUnreachableError
from faceguard.site.config import SiteConfig
from faceguard.site.replica import Replica
from faceguard.site.store import NotAtSiteError, describe


class SiteGallery(Gallery):
    """The local replica, with edits made at the site first (reads and decisions stay local)."""

    def __init__(self, db: Database, config: SiteConfig | None = None):
        super().__init__(db)
        config = config or SiteConfig.load()
        if config is None:
            raise SiteError("This door has not joined a site.")
        self.replica = Replica(Gallery(db), config)

    @contextmanager
    def _at_site(self):
        try:
            store = self.replica.connect()
        except SiteUnreachableError as exc:
            raise SiteUnreachableError(
                f"Gallery changes are made at the site, and the site database "
                f"{describe(self.replica.config.url)} cannot be reached now, so nothing was changed. "
                "This door keeps letting people in from its copy; try again when the site is back.") from exc
        with store:
            yield store
            try:
                self.replica.pull(store)
            except SiteError as exc:
                raise SiteError(f"The change was saved at the site, but this door could not copy it "
                                f"yet ({exc}); it arrives with the next sync.") from exc

    def _blobs(self, photo_rgb: np.ndarray, embedding: np.ndarray) -> tuple[bytes, bytes]:
        c = self.replica.cipher
        return (c.encrypt(encode_jpeg(photo_rgb, PHOTO_MAX_SIDE), crypto.PHOTO),
                c.encrypt(check_embedding(embedding).tobytes(), crypto.EMBEDDING))

    def _person_or_error(self, employee_id: str) -> Person:
        person = self.person(employee_id)
        if person is None:
            raise GalleryError(f"No person with employee id '{employee_id}' is enrolled.")
        return person

    def add_person(self, name: str, employee_id: str, photo_rgb: np.ndarray, embedding: np.ndarray,
                   model_id: str, consent_at: float | None = None, created: float | None = None,
                   check: Callable[[], None] | None = None) -> Person:
        """At the site. ``created`` is the site's own time (an import's original enrolment date
        is not carried there yet); ``check`` (the duplicate search) runs against this door's
        replica just before, not inside the site's transaction."""
        name, employee_id = clean_text(name, "name"), clean_id(employee_id)
        if check is not None:
            check()
        photo, emb = self._blobs(photo_rgb, embedding)
        with self._at_site() as store:
            store.add_person(self.replica.config.door, name, employee_id, photo, emb,
                             clean_text(model_id, "model id"), consent_at or time.time())
        return self._person_or_error(employee_id)

    def replace_photo(self, employee_id: str, photo_rgb: np.ndarray, embedding: np.ndarray,
                      model_id: str, check: Callable[[], None] | None = None) -> Person:
        if check is not None:
            check()
        photo, emb = self._blobs(photo_rgb, embedding)
        with self._at_site() as store:
            store.replace_photo(self.replica.config.door, employee_id, photo, emb, model_id)
        return self._person_or_error(employee_id)

    def rename(self, employee_id: str, name: str) -> Person:
        name = clean_text(name, "name")
        with self._at_site() as store:
            store.rename(self.replica.config.door, employee_id, name)
        return self._person_or_error(employee_id)

    def set_active(self, employee_id: str, active: bool) -> Person:
        with self._at_site() as store:
            store.set_active(self.replica.config.door, employee_id, active)
        return self._person_or_error(employee_id)

    def change_id(self, employee_id: str, new_id: str) -> Person:
        raise GalleryError("This door belongs to a site: an employee id cannot be changed here yet. "
                           "Remove the person and enrol them again under the new id.")

    def set_valid_until(self, employee_id: str, until: float | None) -> Person:
        """At the site: every door stops letting them in after ``until`` (issue 22 item 11)."""
        with self._at_site() as store:
            store.set_valid_until(self.replica.config.door, employee_id, until)
        return self._person_or_error(employee_id)

    def remove(self, employee_id: str) -> str:
        alias = ""
        with self._at_site() as store:
            try:
                store.remove(self.replica.config.door, employee_id)
            except NotAtSiteError:
                if self.person(employee_id) is None:
                    raise
        if self.person(employee_id) is not None:   # enrolled here only, never at the site
            alias = super().remove(employee_id)
        return alias
