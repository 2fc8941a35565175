"""Access control of a running site service: ``pathloop serve`` in its own process, tokens
managed from another process with ``pathloop api token`` as a hospital admin would."""

from __future__ import annotations

import getpass
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil
from support.site import serving

from pathloop.client.settings import SiteSettings
from pathloop.client.store import AuditEvent, Store


def _config(folder: Path, extra: str = "") -> Path:
    config = folder / "pathloop.toml"
    config.write_text(f'site-id = "site-x"\ndata-dir = "{folder / "data"}"\n{extra}')
    return config


def _pathloop(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "pathloop.client", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done


def _audit(config: Path, action: str) -> list[AuditEvent]:
    with Store.open(SiteSettings.from_file(config)) as store:
        return store.audit_events(action=action)


def test_a_revoked_token_is_refused_on_its_next_request(tmp_path: Path) -> None:
    config = _config(tmp_path)
    alice = _pathloop(config, "api", "token", "add", "alice").stdout.strip()
    bob = _pathloop(config, "api", "token", "add", "bob", "--role", "reviewer").stdout.strip()
    with serving(config) as (url, _, _), httpx.Client(base_url=url, timeout=10) as client:
        def me(token: str) -> httpx.Response:
            return client.get("/api/me", headers={"Authorization": f"Bearer {token}"})

        assert me(alice).json() == {"user": "alice", "role": "pathologist"}
        assert me(bob).json() == {"user": "bob", "role": "reviewer"}
        assert client.get("/api/me").status_code == 401  # no token
        assert me(alice + "x").status_code == 401  # not a token of this site

        revoked = _pathloop(config, "api", "token", "revoke", "alice")
        assert "revoked 1 token(s) of alice" in revoked.stderr
        refused = me(alice)
        assert refused.status_code == 401
        assert refused.json()["detail"] == "the token is not valid for this site"
        assert client.get("/api/slides", headers={
            "Authorization": f"Bearer {alice}"}).status_code == 401
        assert me(bob).json() == {"user": "bob", "role": "reviewer"}  # others are untouched
    assert _pathloop(config, "api", "token", "list").stdout.splitlines() == ["bob\treviewer"]
    # Every change is in the audit log: who ran the command, for whom, which role; no token.
    actor = f"cli:{getpass.getuser()}"
    changes = _audit(config, "token.add") + _audit(config, "token.revoke")
    assert [(e.actor, e.action, e.subject, e.details) for e in changes] == [
        (actor, "token.add", "user:alice", {"role": "pathologist", "via": "cli"}),
        (actor, "token.add", "user:bob", {"role": "reviewer", "via": "cli"}),
        (actor, "token.revoke", "user:alice", {"role": "pathologist", "tokens": 1,
                                                "via": "cli"})]


def test_an_unknown_role_is_refused_by_the_cli(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = subprocess.run([sys.executable, "-m", "pathloop.client", "--config", str(config),
                           "api", "token", "add", "eve", "--role", "root"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: role 'root': one of pathologist, reviewer, "
                                   "operator, admin")
    assert not (tmp_path / "data" / "api-tokens.json").exists()


def test_without_require_token_the_local_user_is_admin_and_start_up_warns(
        tmp_path: Path) -> None:
    config = _config(tmp_path, "[api]\nrequire-token = false\n")
    with serving(config) as (url, log, _):
        assert httpx.get(f"{url}/api/me", timeout=10).json() == {"user": "local",
                                                                  "role": "admin"}
        assert httpx.get(f"{url}/api/slides", timeout=10).json() == []
        printed = log.read_text()
    assert "[api] require-token is false: anyone who reaches 127.0.0.1" in printed
    assert "#token=" not in printed  # no token is made or shown
    assert not (tmp_path / "data" / "api-tokens.json").exists()


def test_on_a_terminal_start_up_makes_and_shows_the_first_admin_token(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with serving(config, tty=True) as (url, log, _):
        printed = log.read_text()
        token = printed.split("#token=", 1)[1].split()[0]
        assert httpx.get(f"{url}/api/me", timeout=10, headers={
            "Authorization": f"Bearer {token}"}).json() == {"user": "admin", "role": "admin"}
        assert httpx.get(f"{url}/api/me", timeout=10).status_code == 401
    assert "require-token is false" not in printed
    assert (tmp_path / "data" / "api-tokens.json").stat().st_mode & 0o077 == 0
    (made,) = _audit(config, "token.add")
    assert (made.subject, made.details) == ("user:admin", {"role": "admin", "via": "cli"})


def test_without_a_terminal_no_token_is_made_or_logged(tmp_path: Path) -> None:
    """Under systemd or a redirect the console is a log: it gets how to make a token."""
    config = _config(tmp_path)
    with serving(config) as (url, log, _):
        assert httpx.get(f"{url}/api/me", timeout=10).status_code == 401
        printed = log.read_text()
    assert not re.search(r"#token=[\w-]", printed)  # the hint says "#token=…"
    assert "pathloop api token add NAME --role ROLE" in printed
    assert not (tmp_path / "data" / "api-tokens.json").exists()


def _raw_post(url: str, head: str, body_bytes: int) -> bytes:
    """POST ``head`` then up to ``body_bytes`` of body over a raw socket (a thread sends while
    this one reads, as the service may answer and close before the body is through); the
    response's bytes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head.encode())

        def send_body() -> None:
            chunk = b"[" * 2**20
            try:
                for _ in range(body_bytes // len(chunk)):
                    connection.sendall(chunk)
            except OSError:
                pass  # refused and closed: the rest is never read

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        response = b""
        try:
            while data := connection.recv(65536):
                response += data
        except OSError:
            pass
        sender.join(timeout=30)
    return response


def test_a_100_mb_body_without_a_token_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """Bodies are measured before they are read or their token checked: a 100 MB body gets
    413 at once and the service's memory stays put; one streamed with no length gets 411."""
    config = _config(tmp_path)
    hundred_mb = 100 * 2**20
    with serving(config) as (url, _, process):
        service = psutil.Process(process.pid)
        before = service.memory_info().rss
        refused = _raw_post(url, f"POST /api/jobs HTTP/1.1\r\nHost: x\r\n"
                                 f"Content-Type: application/json\r\n"
                                 f"Content-Length: {hundred_mb}\r\n\r\n", hundred_mb)
        grown = service.memory_info().rss - before
        assert refused.startswith(b"HTTP/1.1 413"), refused[:300]
        assert b"exceeds the site's limit of 67108864 bytes" in refused
        assert grown < 10 * 2**20, f"the service grew by {grown} bytes"
        chunked = _raw_post(url, "POST /api/jobs HTTP/1.1\r\nHost: x\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n", 0)
        assert chunked.startswith(b"HTTP/1.1 411"), chunked[:300]
        bad = _raw_post(url, "POST /api/jobs HTTP/1.1\r\nHost: x\r\n"
                             "Content-Length: 12, 12\r\n\r\n", 0)
        assert bad.startswith(b"HTTP/1.1 400"), bad[:300]
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/api/health").status_code == 200  # still answering
            small = client.post("/api/jobs", json={"kind": "tile"})
            assert small.status_code == 401  # within the limit: on to the token check
