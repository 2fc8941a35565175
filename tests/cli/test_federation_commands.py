"""A federation set up with the commands of docs/federation.md alone, each in its own
process: ``server credentials``, ``server start``, ``site key``, ``server register``,
``site join`` and ``server status`` (TLS and SuperNode authentication on, loopback only)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from support.site import free_port

pytestmark = [pytest.mark.slow]

TIMEOUT = 120.0


def _pathloop(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "pathloop.client", *args],
                          capture_output=True, text=True, timeout=TIMEOUT, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@contextmanager
def _background(log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running ``pathloop`` command, stopped when the block ends."""
    with log.open("w") as console:
        process = subprocess.Popen([sys.executable, "-m", "pathloop.client", *args],
                                   stdout=console, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _until(check: Callable[[], str | None], what: str, logs: list[Path]) -> str:
    """Retry ``check`` (a command's output, or None while it cannot answer) until it does."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        answer = check()
        if answer is not None:
            return str(answer)
        if time.monotonic() > deadline:
            pytest.fail(f"{what} after {TIMEOUT:.0f} s; logs:\n" + "\n".join(
                f"--- {log}\n{log.read_text()[-3000:]}" for log in logs))
        time.sleep(1.0)


def test_a_federation_set_up_with_the_cli_alone(tmp_path: Path) -> None:
    state, keys = tmp_path / "central", tmp_path / "site-keys"
    made = _pathloop("server", "credentials", str(state), "--host", "127.0.0.1")
    credentials = state / "credentials"
    for name in ("ca.crt", "ca.key", "server.pem", "server.key"):
        assert (credentials / name).is_file(), made.stdout
    for private in ("ca.key", "server.key"):
        assert stat.S_IMODE((credentials / private).stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate((credentials / "server.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    again = _pathloop("server", "credentials", str(state), check=False)
    assert again.returncode != 0  # never overwrites the CA every site trusts

    key = _pathloop("site", "key", str(keys), "--name", "site-a")
    assert (keys / "site-a.pub").read_text().startswith("ecdsa-sha2-nistp384 ")
    assert stat.S_IMODE((keys / "site-a").stat().st_mode) == 0o600
    assert "never leaves this site" in key.stdout

    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    config = tmp_path / "site.toml"
    config.write_text(f'site-id = "site-a"\ndata-dir = "{tmp_path / "data"}"\n[federation]\n'
                      f'training-images = "{tmp_path / "images"}"\n'
                      f'training-masks = "{tmp_path / "masks"}"\n')
    port = free_port()
    logs = [tmp_path / "superlink.log", tmp_path / "supernode.log"]
    with ExitStack() as running:
        running.enter_context(_background(logs[0], "server", "start", str(state),
                                          "--host", "127.0.0.1", "--port", str(port)))

        def registered() -> str | None:
            done = _pathloop("server", "register", str(state), str(keys / "site-a.pub"),
                             "--name", "site-a", check=False)
            return done.stdout if done.returncode == 0 else None

        assert "registered site-a as node" in _until(registered, "no registration", logs)
        running.enter_context(_background(
            logs[1], "--config", str(config), "site", "join", "--superlink",
            f"127.0.0.1:{port}", "--ca", str(credentials / "ca.crt"),
            "--key", str(keys / "site-a"), "--port", str(free_port())))

        def online() -> str | None:
            shown = _pathloop("server", "status", str(state)).stdout
            rows = [line for line in shown.splitlines() if "site-a" in line]
            return shown if rows and "online" in rows[0] else None

        shown = _until(online, "site-a never came online", logs)
    assert "global versions" in shown and "runs" in shown
