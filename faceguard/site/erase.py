"""Erasure in the site's access log: what remains of a removed person is that someone came in."""

from __future__ import annotations

import uuid

from faceguard.gallery.ids import erase_words


def scrub(cur, names: dict[str, str]) -> int:
    """Every door's log rows of the people removed at the site lose their snapshot, id and name
    (a pseudonym stays), and their name leaves every reason text ("nearest Lin"). ``names``:
    {id: name} of a removal just made (its row no longer holds the name). Returns how many
    people were scrubbed."""
    cur.execute("SELECT DISTINCT e.employee_id, e.name FROM events e JOIN people p "
                "ON p.employee_id = e.employee_id WHERE p.deleted")
    found: dict[str, set[str]] = {}
    for eid, name in cur.fetchall():
        found.setdefault(eid, set()).add(name or "")
    for eid, name in names.items():
        found.setdefault(eid, set()).add(name)
    for eid, words in found.items():
        words |= {eid}
        cur.execute("UPDATE events SET employee_id=%s, name=NULL, snapshot=NULL WHERE employee_id=%s",
                    ("erased-" + uuid.uuid4().hex[:8], eid))
        for word in words - {""}:
            cur.execute("SELECT door, local_id, time, reason FROM events WHERE strpos(reason, %s) > 0", (word,))
            for door, local_id, t, reason in cur.fetchall():
                cur.execute("UPDATE events SET reason=%s WHERE door=%s AND local_id=%s AND time=%s",
                            (erase_words(reason, words), door, local_id, t))
    return len(found)
