"""Several doors, one site: a shared gallery and access log on PostgreSQL (the ``[site]`` extra).

- ``schema``  the site's tables as a versioned list of migrations;
- ``keys``    the site key (AES-256-GCM, the same Cipher as the local gallery) and join codes;
- ``store``   ``SiteStore``: one connection to the site database (people, embeddings, the access
              log of every door), everything a face is made of encrypted with the site key;
- ``config``  what a joined door keeps locally (site.json, site.key, the replica's cursors);
- ``replica`` the door's local gallery as a replica of the site: pull by change sequence, the
              event outbox, and ``SiteGallery`` (edits go to the site first);
- ``watch``   a background thread that keeps a running door in step (LISTEN/NOTIFY + catch-up).

The door always decides from its local replica, so a site that is down stops edits, never
decisions. Nothing here imports Qt or torch, and gallery/access/vision never import ``site``.
"""

from faceguard.errors import FaceGuardError


class SiteError(FaceGuardError):
    """The site database cannot be used as asked (wrong code, newer schema, not joined, …)."""


class SiteUnreachableError(SiteError):
    """The site's PostgreSQL server cannot be reached now."""
