"""`pathloop demo` end to end on small sample slides: what it prints, the viewer it serves."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def test_demo_command_reports_what_it_did_and_serves_the_viewer(tmp_path: Path) -> None:
    port = _free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "pathloop.client", "demo", "--workdir", str(tmp_path),
         "--slides-per-site", "1", "--size", "2048", "--no-loop", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "Viewer of site" in line:
                break
        output = "".join(lines)
        assert "3 sites, 3 slides" in output, demo.stderr.read() if demo.stderr else output
        assert "site-c-slide-0.svs" in output
        url = re.search(r"(http://127\.0\.0\.1:\d+/)#token=(\S+)", output)
        assert url is not None, output
        base, token = url.groups()
        slides = _get_when_up(base + "api/slides", token)
        assert [s["name"] for s in slides] == ["site-a-slide-0.svs"]
    finally:
        demo.terminate()
        demo.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get_when_up(url: str, token: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 60
    while True:
        try:
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
