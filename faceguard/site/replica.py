"""The door's local gallery as a replica of the site, and the outbox of its access log.

Pull. The site numbers every gallery change (store.py); the door applies the people changed
after its cursor, oldest first, through the local Gallery's own methods (each its own SQLite
transaction, files before rows), and saves the cursor after each batch. A door killed mid-way
resumes from the saved cursor and applies some changes again, which is harmless: applying a
change makes the local person look like the site's row, whatever it looked like before.
A removal (a tombstone at the site) erases the local person, photo, embedding and snapshots.

Push. The access log is written locally first (the door never waits for the network); events
after the ``pushed`` cursor go to the site keyed by (door, local id, time), so a push repeated
after a lost answer or a crash inserts nothing twice, and the cursor moves only after the site
committed, so nothing is lost.

Edits. ``SiteGallery`` is a Gallery whose edits (enrol, rename, (de)activate, replace photo,
remove) are made at the site first and then pulled; while the site is unreachable they are
refused, and the door keeps deciding from its replica.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceguard.errors import FaceGuardError, GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.db import Database, decode_jpeg, encode_jpeg, iso
from faceguard.gallery.events import SNAPSHOT_MAX_SIDE, EventLog
from faceguard.gallery.ids import clean_id, clean_text, normalise_id
from faceguard.gallery.person import check_embedding
from faceguard.gallery.store import PHOTO_MAX_SIDE, Gallery, Person
from faceguard.site import SiteError, SiteUnreachableError, factor
from faceguard.site import rows as rows_mac
from faceguard.site.config import ReplicaState, SiteConfig, sync_lock
from faceguard.site.store import NotAtSiteError, SitePerson, SiteStore, describe

log = logging.getLogger(__name__)

PULL_BATCH = 100
PUSH_BATCH = 500
RESULT_WINDOW_S = 120.0   # how long after an event a late door result still reaches the site


def door_model_id() -> str:
    """The embedding id this door's pipeline makes (settings + manifest; no network loaded)."""
    from faceguard.settings import load_settings
    from faceguard.vision.embed import embedding_id
    from faceguard.vision.models import load_manifest

    settings = load_settings()
    return embedding_id(load_manifest().embedder(settings.model_id or None).id, settings.flip_average)


@dataclass(frozen=True)
class SyncReport:
    applied: int          # site changes applied to the local gallery
    pushed: int           # local events sent to the site
    version: int          # the gallery version the replica is at now
    push_problem: str | None = None   # why the log was not sent this time (it goes next time)


class Replica:
    """A local gallery bound to the site it replicates."""

    def __init__(self, gallery: Gallery, config: SiteConfig, model_id: str | None = None):
        self.gallery = gallery if type(gallery) is Gallery else Gallery(gallery.db)  # no site hooks
        self.config = config
        self.cipher = crypto.Cipher(config.key())
        self.root = Path(gallery.root)
        self._model_id = model_id

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = door_model_id()
        return self._model_id

    def state(self) -> ReplicaState:
        return ReplicaState.load(self.root, self.config.site_id)

    def connect(self, timeout: float = 5) -> SiteStore:
        store = SiteStore.connect(self.config.url, timeout)
        try:
            if store.site_id() != self.config.site_id:
                raise SiteError(f"{store.where} now holds another site than the one this door "
                                "joined; join it again with its code.")
            self.fresh_key(store)
        except BaseException:
            store.close()
            raise
        return store

    def fresh_key(self, store: SiteStore) -> None:
        """Follow a rotation of the site key (rotate.py): unwrap the new key meant for this door."""
        old = self.config.key()
        key = store.current_key(old, self.config.door)
        if key != old:
            SiteConfig.save_key(key)
            log.info("The site key was rotated; this door now holds the new one")
        self.cipher = crypto.Cipher(key)
        store.use_key(key)

    # -- pull ------------------------------------------------------------------------------------
    def pull(self, store: SiteStore, progress=None) -> int:
        """Apply every site change after the cursor; returns how many were applied."""
        applied = 0
        self.fresh_key(store)
        with sync_lock(self.root):
            state = self.state()
            if state.seq and store.version() < state.seq:
                # The site went back in time (restored from a backup): its new changes would
                # be numbered below our cursor and never seen. Copy it again from the start.
                log.warning("The site's gallery version %d is below this door's %d; copying it again",
                            store.version(), state.seq)
                state.seq, state.photo_seq = 0, {}
                at_site = {p.employee_id for p in store.people()}
                for person in self.gallery.people(active_only=False):
                    if person.employee_id not in at_site:
                        self.gallery.remove(person.employee_id)
            while True:
                rows = store.changes(state.seq, PULL_BATCH)
                if not rows:
                    break
                need = [r.employee_id for r in rows if not r.deleted and
                        (state.photo_seq.get(r.employee_id) != r.photo_seq
                         or self.gallery.person(r.employee_id) is None)]
                faces = store.face_data(need)
                blobs = factor.fetch(store, [r.employee_id for r in rows if factor.news(r, state)])
                for row in rows:
                    # One bad row is quarantined and reported; every later change still applies.
                    if (why := self._refusal(row, faces.get(row.employee_id), state, blobs)) is None:
                        try:
                            self._apply(row, faces.get(row.employee_id), state)
                            factor.apply_row(self, row, blobs.get(row.employee_id), state)
                            state.quarantined.pop(row.employee_id, None)
                            state.seen[normalise_id(row.employee_id)] = row.seq
                        except FaceGuardError as exc:
                            why = str(exc)
                    if why is not None:
                        state.quarantined[row.employee_id] = why
                        log.error("Site row of employee id %r not applied: %s", row.employee_id, why)
                        self._fail_closed(row.employee_id)
                    state.seq = row.seq
                    applied += 1
                state.save(self.root)
                if progress:
                    progress(applied)
            state.last_sync = time.time()
            state.save(self.root)
        if applied:
            log.info("Applied %d site change(s); gallery version %d", applied, state.seq)
        return applied

    def _fail_closed(self, employee_id: str) -> None:
        """A refused row may hide a change this door never saw (a deactivation overwritten before
        it was pulled): the person is let in here no more until a valid row says otherwise."""
        try:
            local = self.gallery.person(employee_id)
            if local is not None and local.enabled:
                self.gallery.set_active(local.employee_id, False)
        except FaceGuardError as exc:
            log.error("Could not switch off %r after its site row was refused: %s", employee_id, exc)

    def _refusal(self, row: SitePerson, face, state: ReplicaState, blobs: dict[str, bytes]) -> str | None:
        """Why this site row must not be applied here (rows.py), or None."""
        if not rows_mac.verify(self.cipher.mac_key, row):
            return rows_mac.DAMAGED
        if row.seq < state.seen.get(normalise_id(row.employee_id), 0):
            return rows_mac.OLDER
        if face is not None and not rows_mac.blobs_match(row, *face):
            return rows_mac.BLOBS
        if factor.news(row, state) and factor.digest(blobs.get(row.employee_id)) != rows_mac.factor_digest(row):
            return rows_mac.BLOBS
        return None

    def _apply(self, row: SitePerson, face, state: ReplicaState) -> None:
        g, eid = self.gallery, row.employee_id
        local = g.person(eid)
        if local is not None and local.employee_id != eid:
            local = g.change_id(local.employee_id, eid)   # one id: the site's spelling wins
        if row.deleted:
            if local is not None:
                g.remove(eid)      # photo, embedding row and snapshots, in one transaction
            state.photo_seq.pop(eid, None)
            return
        if face is not None:
            rgb, embedding, model_id = self._decrypt(face, row)
            if local is None:
                local = g.add_person(row.name, eid, rgb, embedding, model_id, consent_at=row.consent_at)
            else:
                local = g.replace_photo(eid, rgb, embedding, model_id)
            state.photo_seq[eid] = row.photo_seq
        elif local is None:
            raise SiteError(f"The site holds no photo for {row.name} ({eid}); replace their photo "
                            "at any door.")
        if local.name != row.name:
            g.rename(eid, row.name)
        if local.enabled != row.active:
            g.set_active(eid, row.active)
        if local.valid_until != row.valid_until:
            g.set_valid_until(eid, row.valid_until)

    def _decrypt(self, face, row: SitePerson) -> tuple[np.ndarray, np.ndarray, str]:
        photo_blob, embeddings = face
        rgb = decode_jpeg(self.cipher.decrypt(photo_blob, crypto.PHOTO, "site photo"), "site photo")
        # This door's model when the site has its vector; otherwise another model's, which the
        # door re-embeds from the photo before comparing (gallery.recognise).
        model_id = self.model_id if self.model_id in embeddings else sorted(embeddings)[0] if embeddings else None
        if model_id is None:
            raise SiteError(f"The site holds no face data for {row.name} ({row.employee_id}); "
                            "replace their photo at any door.")
        vec = np.frombuffer(self.cipher.decrypt(embeddings[model_id], crypto.EMBEDDING, "site embedding"),
                            np.float32)
        return rgb, vec, model_id

    # -- push ------------------------------------------------------------------------------------
    def _unpushed_ids(self, after: int, limit: int | None) -> list[int]:
        # The events table belongs to events.py; only its id column is read here.
        sql = "SELECT id FROM events WHERE id > ? ORDER BY id" + ("" if limit is None else f" LIMIT {int(limit)}")
        with self.gallery.db.reading() as con:
            return [r[0] for r in con.execute(sql, (after,))]

    def pending(self) -> int:
        """Local events not yet acknowledged by the site."""
        state = self.state()
        with self.gallery.db.reading() as con:
            return con.execute("SELECT COUNT(*) FROM events WHERE id > ?", (state.pushed,)).fetchone()[0]

    def push(self, store: SiteStore) -> int:
        events = EventLog(self.gallery)
        sent = 0
        with sync_lock(self.root):
            state = self.state()
            with self.gallery.db.reading() as con:
                top = con.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            if top < state.pushed:      # the log was emptied and its ids restarted
                state.pushed = 0
            while ids := self._unpushed_ids(state.pushed, PUSH_BATCH):
                rows = []
                for event_id in ids:
                    e = events.event(event_id)
                    snap = None
                    if e.has_snapshot:
                        rgb = events.snapshot(event_id)
                        if rgb is not None:
                            snap = self.cipher.encrypt(encode_jpeg(rgb, SNAPSHOT_MAX_SIDE, 85), crypto.SNAPSHOT)
                    rows.append((e.id, e.time, e.employee_id, e.name, e.distance, e.threshold,
                                 e.decision, e.reason, e.door_result, snap))
                store.push_events(self.config.door, rows)
                state.pushed = ids[-1]
                state.save(self.root)
                sent += len(rows)
            # A door output may answer after its decision was logged (EventLog.set_door_result);
            # the results of recent events are sent again until they settle.
            recent = [e for e in events.events(limit=200, since=time.time() - RESULT_WINDOW_S)
                      if e.id <= state.pushed]
            store.update_door_results(self.config.door, [(e.id, e.time, e.door_result) for e in recent])
        if sent:
            log.info("Pushed %d access-log event(s) to the site", sent)
        return sent

    # -- both --------------------------------------------------------------------------------------
    def sync(self, timeout: float = 5, store: SiteStore | None = None) -> SyncReport:
        """One catch-up: pull the gallery, then push the log (a pull first erases the snapshots
        of anyone removed meanwhile, so they are not sent). ``store``: an open connection to
        reuse (the watcher's), else one is opened for this sync."""
        if store is None:
            with self.connect(timeout) as own:
                return self.sync(timeout, own)
        applied = self.pull(store)
        factor.publish_changed(self, store)
        try:
            pushed, problem = self.push(store), None
        except SiteUnreachableError:
            raise
        except SiteError as exc:
            # A lock on the site's log (a report, an administrator) delays the log only: the
            # gallery was pulled first, and the next sync sends what is pending (item 8).
            pushed, problem = 0, str(exc)
            log.warning("Access-log events not sent this time: %s", exc)
        version = self.state().seq
        try:
            store.door_synced(self.config.door, version)
        except SiteUnreachableError:
            raise
        except SiteError as exc:
            log.info("The site's door list was not updated this time: %s", exc)
        return SyncReport(applied, pushed, version, problem)

    def status(self, timeout: float = 3) -> dict:
        state = self.state()
        reachable, site_version, problem = False, None, None
        try:
            with self.connect(timeout) as store:
                reachable, site_version = True, store.version()
        except SiteError as exc:
            problem = str(exc)
        return {"site": describe(self.config.url), "door": self.config.door, "reachable": reachable,
                "last_sync": iso(state.last_sync) if state.last_sync else None,
                "pending_events": self.pending(), "gallery_version": state.seq,
                "site_gallery_version": site_version, "problem": problem,
                "quarantined": dict(state.quarantined),
                "stale_s": None if state.last_sync is None else round(time.time() - state.last_sync, 1)}


# -- edits through the site -----------------------------------------------------------------------
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


def open_gallery(data_dir: Path | None = None) -> Gallery:
    """The gallery a command should edit: a SiteGallery at a joined door, else the plain one."""
    config = SiteConfig.load()
    db = Database.open(data_dir)
    try:
        return SiteGallery(db, config) if config else Gallery(db)
    except BaseException:
        db.close()
        raise
