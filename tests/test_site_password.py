"""Issue 24 item 8: the site's database password is not left on the command line or in clear in
site.json. A real PostgreSQL that asks this role for its password (scram-sha-256)."""

from __future__ import annotations

import json
import stat

import pytest
from conftest import REPO

from faceguard import cli

PASSWORD = r"S3cret:with\odd@chars"


@pytest.fixture(scope="module")
def server(postgres_server):
    """The test server, where the role `door` must give its password over TCP."""
    import psycopg
    c = postgres_server
    with psycopg.connect(c.url, autocommit=True) as con:
        con.execute("SET password_encryption = 'scram-sha-256'")
        con.execute(f"CREATE ROLE door LOGIN PASSWORD '{PASSWORD}'")
        con.execute("CREATE DATABASE fg OWNER door")
    hba = c.data / "pg_hba.conf"
    hba.write_text("host all door 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    c._run("pg_ctl", "-D", str(c.data), "reload")
    return c


def url(server, password: str | None = None) -> str:
    from urllib.parse import quote
    secret = f":{quote(password, safe='')}" if password else ""
    return f"postgresql://door{secret}@127.0.0.1:{server.port}/fg"


def test_the_password_comes_from_a_prompt_or_pgpassword_and_is_kept_out_of_site_json(
        server, monkeypatch, capsys):
    from faceguard.site.config import SiteConfig, passfile_path
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(REPO / "no-such-passfile"))   # not the user's ~/.pgpass
    # No password anywhere: refused with a one-line reason.
    assert cli.main(["site", "create", url(server)]) == 2
    assert "password" in capsys.readouterr().err
    # From the prompt (nothing on the command line).
    monkeypatch.setattr("getpass.getpass", lambda prompt="": PASSWORD)
    assert cli.main(["site", "create", url(server), "--ask-password", "--json"]) == 0
    code = json.loads(capsys.readouterr().out)["code"]
    assert not passfile_path().exists()              # create stores nothing
    # Join from PGPASSWORD: site.json holds no password; FaceGuard's passfile (0600) does.
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert cli.main(["site", "join", url(server), "--code", code, "--door", "front"]) == 0
    capsys.readouterr()
    saved = SiteConfig.path().read_text()
    assert PASSWORD not in saved and "S3cret" not in saved
    assert json.loads(saved)["url"] == f"{url(server)}?passfile={passfile_path()}"
    assert stat.S_IMODE(passfile_path().stat().st_mode) == 0o600
    assert passfile_path().read_text() == f"127.0.0.1:{server.port}:fg:door:S3cret\\:with\\\\odd@chars\n"
    # Later, without PGPASSWORD: libpq reads the passfile and the door reaches its site.
    monkeypatch.delenv("PGPASSWORD")
    assert cli.main(["site", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reachable"] is True


def test_a_password_in_the_url_still_works_but_is_moved_out_and_a_note_says_why(server, monkeypatch, capsys):
    from faceguard.site.config import SiteConfig, passfile_path
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(REPO / "no-such-passfile"))
    import psycopg
    with psycopg.connect(server.url, autocommit=True) as con:
        con.execute("CREATE DATABASE fg2 OWNER door")
    with_secret = url(server, PASSWORD).replace("/fg", "/fg2")
    assert cli.main(["site", "create", with_secret, "--json"]) == 0
    out = capsys.readouterr()
    assert "a password in the URL stays in the shell's history" in out.err
    code = json.loads(out.out)["code"]
    assert cli.main(["site", "join", with_secret, "--code", code, "--door", "back"]) == 0
    assert "S3cret" not in SiteConfig.path().read_text() and "S3cret" in passfile_path().read_text()
    kept = passfile_path().read_text()
    assert cli.main(["site", "join", url(server).replace("door@", "nobody:x@"), "--code", code, "--door", "x"]) == 2
    assert passfile_path().read_text() == kept        # a failed join leaves the working file as it was
