"""Deep Zoom tile benchmark: the running site service beside openslide's DeepZoomGenerator.

The tiles: every Deep Zoom tile (254 px, overlap 1) of every level of CMU-1-Small-Region
(2220×2967, one level) from ``../shared/data/wsi`` — 160 tiles, what a viewer fetches when
the pathologist opens the slide and pans over all of it at full resolution (the slide is
small: its whole pyramid is a session). Everyone gets the same set. The slide stores one
level, so the 9 single-tile levels (1×1 … 139×186 px) read the whole slide and cost ~100×
a full-resolution tile, on both sides: they dominate means and p99s.

peer
    In this process: ``DeepZoomGenerator(OpenSlide(path), 254, 1, limit_bounds=False)``,
    ``get_tile`` then a JPEG encode with Pillow at ``--quality`` (80, the service's default;
    the service is configured with the same ``[api] jpeg-quality``). One untimed pass, then
    ``--rounds`` timed passes in shuffled order, half before the service runs and half
    after; per-tile mean, p50, p99. Our own :func:`pathloop.client.wsi.read_deepzoom_tile`
    + the same encode is timed beside it, in process too, to split the library's share from
    the service's.
service
    ``pathloop serve`` as a subprocess on a free port, over a fresh temporary site (config,
    data dir, the slide ingested with ``pathloop slides add``, a token from
    ``pathloop api token add``), one fresh service per concurrency level so each starts with
    empty caches. 1, 4 and 16 client threads, each with its own keep-alive HTTP connection,
    fetch the whole set in their own shuffled order, started together: the first pass
    (``cold``: the service's caches fill as the clients go) and a second one (``warm``).
    Per-request p50/p99 latency, throughput (tiles/s over the pass's wall time) and errors: a
    non-200, a body that is not a JPEG of the tile's advertised size, or a failed request.
    The service's CPU time per request and cores kept busy (from ``/proc``) say whether it
    is the bottleneck. Every served tile is also compared with DeepZoomGenerator's through
    the same JPEG encode (mean absolute difference per channel, worst tile).

Goal (the issue): zero errors and p99 at 16 clients within 3× of the peer's per-tile time,
judged on the cold pass (caching allowed: 15 of 16 clients already hit what the first one
made). The clients share the machine's cores with the service (2 on CI), so they slow it.

Run: ``.venv/bin/python bench/tiles.py``. Prints a table; writes ``bench/results/tiles.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openslide
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image

from pathloop.client.wsi import DeepZoomGrid, open_slide, read_deepzoom_tile

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SLIDE_ROOT = REPO.parent / "shared" / "data" / "wsi"
SLIDE = SLIDE_ROOT / "cmu_small_region.svs"
PATHLOOP = Path(sys.executable).with_name("pathloop")
CLIENTS = (1, 4, 16)
GOAL_RATIO = 3.0

Address = tuple[int, int, int]  # (level, col, row)


def tile_set(grid: DeepZoomGrid) -> list[Address]:
    """Every tile of every Deep Zoom level, coarsest first."""
    return [(level, col, row) for level, (cols, rows) in enumerate(grid.level_tiles)
            for col in range(cols) for row in range(rows)]


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _stats_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"mean_ms": round(float(ms.mean()), 2), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2)}


def time_in_process(render: Callable[[Address], bytes], tiles: list[Address], rounds: int,
                    seed: int) -> list[float]:
    """Seconds per tile over ``rounds`` shuffled passes (after one untimed pass)."""
    for address in tiles:
        render(address)
    seconds = []
    rng = random.Random(seed)
    for _ in range(rounds):
        order = tiles[:]
        rng.shuffle(order)
        for address in order:
            started = time.perf_counter()
            render(address)
            seconds.append(time.perf_counter() - started)
    return seconds


# --- the service --------------------------------------------------------------------------

@dataclass
class Service:
    base_url: str
    token: str
    slide_id: int | str
    log: Path
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the service process has used so far (user + system)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pathloop(config: Path, *args: str) -> str:
    done = subprocess.run([str(PATHLOOP), "--config", str(config), *args],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pathloop {' '.join(args)} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


@contextmanager
def running_service(workdir: Path, quality: int, timeout: float = 60.0) -> Iterator[Service]:
    """A fresh site with the slide ingested and a token, served until the block ends."""
    data_dir = workdir / "data"
    config = workdir / "site.toml"
    config.write_text(f'site-id = "bench"\ndata-dir = {json.dumps(str(data_dir))}\n'
                      f"slide-roots = [{json.dumps(str(SLIDE_ROOT.resolve()))}]\n\n"
                      f"[api]\njpeg-quality = {quality}\n")
    _pathloop(config, "slides", "add", str(SLIDE))
    token = _pathloop(config, "api", "token", "add", "bench").split()[-1]
    port = _free_port()
    log = workdir / "serve.log"
    with log.open("w") as out:
        # Its own session, so stopping it also stops any worker processes it started.
        server = subprocess.Popen([str(PATHLOOP), "--config", str(config), "serve",
                                   "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"pathloop serve exited ({server.returncode}):\n"
                                   f"{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"pathloop serve not healthy after {timeout:.0f} s:\n"
                                   f"{log.read_text()[-2000:]}")
            time.sleep(0.2)
        slides = httpx.get(f"{base_url}/api/slides", timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
        slides.raise_for_status()
        ids = [s["id"] for s in slides.json() if SLIDE.stem in str(s.get("name", ""))]
        if len(ids) != 1:
            raise RuntimeError(f"GET /api/slides: expected one {SLIDE.name}, got {slides.text}")
        yield Service(base_url, token, ids[0], log, server.pid)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


# --- the clients --------------------------------------------------------------------------

@dataclass
class Fetch:
    address: Address
    seconds: float
    status: int | None  # None: the request failed
    body: bytes
    error: str | None


def _client(service: Service, order: list[Address], start: threading.Barrier,
            passes: int, results: list[list[Fetch]]) -> None:
    # http.client rather than httpx: a third of the CPU per request, and the clients share
    # the cores with the service they measure.
    url = urllib.parse.urlsplit(service.base_url)
    headers = {"Authorization": f"Bearer {service.token}"}

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=120)

    connection = connect()
    try:
        connection.request("GET", "/api/health")  # open the keep-alive connection first
        connection.getresponse().read()
        for pass_ in range(passes):
            start.wait()
            for level, col, row in order:
                path = f"/api/slides/{service.slide_id}/dz/{level}/{col}_{row}.jpeg"
                started = time.perf_counter()
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    body = response.read()
                    fetch = Fetch((level, col, row), time.perf_counter() - started,
                                  response.status, body, None)
                except (OSError, http.client.HTTPException) as error:
                    fetch = Fetch((level, col, row), time.perf_counter() - started, None,
                                  b"", f"{type(error).__name__}: {error}")
                    connection.close()
                    connection = connect()
                results[pass_].append(fetch)
            start.wait()
    except BaseException:
        start.abort()  # the other threads and the timer stop waiting for this one
        raise
    finally:
        connection.close()


def run_clients(service: Service, tiles: list[Address], clients: int, passes: int,
                seed: int) -> list[tuple[float, float, list[Fetch]]]:
    """``clients`` threads fetch every tile ``passes`` times.

    Returns, for each pass, the wall seconds, the service's CPU seconds and the fetches.
    """
    # One barrier round opens each pass and one closes it: the main thread times between.
    start = threading.Barrier(clients + 1)
    per_client: list[list[list[Fetch]]] = [[[] for _ in range(passes)] for _ in range(clients)]
    threads = []
    for k in range(clients):
        order = tiles[:]
        random.Random(seed + k).shuffle(order)
        threads.append(threading.Thread(target=_client, daemon=True,
                                        args=(service, order, start, passes, per_client[k])))
    for thread in threads:
        thread.start()
    walls, cpus = [], []
    for _ in range(passes):
        start.wait()
        started, cpu = time.perf_counter(), service.cpu_seconds()
        start.wait()
        walls.append(time.perf_counter() - started)
        cpus.append(service.cpu_seconds() - cpu)
    for thread in threads:
        thread.join()
    return [(walls[p], cpus[p], [f for client in per_client for f in client[p]])
            for p in range(passes)]


def check_fetches(fetches: list[Fetch], grid: DeepZoomGrid,
                  reference: dict[Address, np.ndarray]) -> tuple[list[str], float]:
    """Errors (one line each) and the worst mean abs difference from DeepZoomGenerator."""
    errors = []
    worst = 0.0
    decoded: dict[str, np.ndarray] = {}
    for fetch in fetches:
        where = "{}/{}_{}".format(*fetch.address)
        if fetch.status != 200:
            errors.append(f"{where}: {fetch.error or f'HTTP {fetch.status}'} "
                          f"{fetch.body[:120]!r}")
            continue
        digest = hashlib.sha1(fetch.body).hexdigest()
        if digest not in decoded:
            try:
                image = Image.open(io.BytesIO(fetch.body))
                if image.format != "JPEG":
                    raise ValueError(f"a {image.format} image")
                decoded[digest] = np.asarray(image.convert("RGB"))
            except (OSError, ValueError) as error:
                errors.append(f"{where}: not a JPEG ({error})")
                continue
        pixels = decoded[digest]
        tile = grid.tile(*fetch.address)
        if pixels.shape != (tile.out_height, tile.out_width, 3):
            errors.append(f"{where}: {pixels.shape[1]}×{pixels.shape[0]} px, "
                          f"expected {tile.out_width}×{tile.out_height}")
            continue
        theirs = reference[fetch.address]
        if theirs.shape == pixels.shape:  # see tests/wsi/test_deepzoom.py: thumbnail rounding
            diff = np.abs(pixels.astype(np.int16) - theirs).mean(axis=(0, 1)).max()
            worst = max(worst, float(diff))
    return errors, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality, both sides")
    parser.add_argument("--rounds", type=int, default=4, help="timed in-process passes")
    parser.add_argument("--passes", type=int, default=2, help="passes per client (cold, warm)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not SLIDE.is_file():
        sys.exit(f"error: {SLIDE} missing (../shared/data beside the repository)")

    osr = openslide.OpenSlide(str(SLIDE))
    generator = DeepZoomGenerator(osr, 254, 1, limit_bounds=False)
    slide = open_slide(SLIDE)
    grid = DeepZoomGrid(*osr.dimensions)
    tiles = tile_set(grid)
    # What the peer serves, decoded: JPEG's own loss (up to ~12 per channel at quality 75
    # on this slide) mostly cancels out of the comparison with the service's tiles.
    reference = {a: np.asarray(Image.open(io.BytesIO(
        _jpeg(generator.get_tile(a[0], (a[1], a[2])), args.quality))).convert("RGB"))
        for a in tiles}

    def peer(a: Address) -> bytes:
        return _jpeg(generator.get_tile(a[0], (a[1], a[2])), args.quality)

    def ours(a: Address) -> bytes:
        return _jpeg(Image.fromarray(read_deepzoom_tile(slide, grid, *a)), args.quality)

    half = max(1, args.rounds // 2)
    print(f"{SLIDE.name}: {len(tiles)} tiles over {grid.level_count} Deep Zoom levels; "
          f"in process, JPEG quality {args.quality}…", flush=True)
    peer_s = time_in_process(peer, tiles, half, args.seed)
    ours_s = time_in_process(ours, tiles, half, args.seed)

    runs: list[dict[str, Any]] = []
    error_lines: list[str] = []
    worst_diff = 0.0
    body_bytes: list[int] = []
    for clients in CLIENTS:
        with tempfile.TemporaryDirectory(prefix="pathloop-bench-tiles-") as tmp, \
                running_service(Path(tmp), args.quality) as service:
            print(f"service, {clients} client(s)…", flush=True)
            passes = run_clients(service, tiles, clients, args.passes, args.seed + 100 * clients)
        for index, (wall, cpu, fetches) in enumerate(passes):
            errors, worst = check_fetches(fetches, grid, reference)
            error_lines += [f"{clients} clients, pass {index + 1}: {e}" for e in errors]
            worst_diff = max(worst_diff, worst)
            body_bytes += [len(f.body) for f in fetches if f.status == 200]
            slowest = sorted(fetches, key=lambda f: f.seconds, reverse=True)[:5]
            runs.append({"clients": clients, "pass": "cold" if index == 0 else f"warm{index}",
                         "requests": len(fetches), "errors": len(errors),
                         "tiles_per_s": round(len(fetches) / wall, 1),
                         "wall_s": round(wall, 2), **_stats_ms([f.seconds for f in fetches]),
                         "service_cpu_ms_per_request": round(cpu / len(fetches) * 1e3, 2),
                         "service_cores_busy": round(cpu / wall, 2),
                         "slowest": [["{}/{}_{}".format(*f.address), round(f.seconds * 1e3, 1)]
                                     for f in slowest]})
    # The second half of the in-process rounds, after the service: drift shows in both.
    peer_s += time_in_process(peer, tiles, args.rounds - half, args.seed + 1)
    ours_s += time_in_process(ours, tiles, args.rounds - half, args.seed + 1)
    osr.close()
    slide.close()

    peer_stats = {**_stats_ms(peer_s), "tiles_per_s": round(len(peer_s) / sum(peer_s), 1)}
    ours_stats = {**_stats_ms(ours_s), "tiles_per_s": round(len(ours_s) / sum(ours_s), 1)}
    cold16 = next(r for r in runs if r["clients"] == 16 and r["pass"] == "cold")
    ratio_mean = cold16["p99_ms"] / peer_stats["mean_ms"]
    ratio_p50 = cold16["p99_ms"] / peer_stats["p50_ms"]
    ratio_p99 = cold16["p99_ms"] / peer_stats["p99_ms"]
    total_errors = sum(r["errors"] for r in runs)
    met = total_errors == 0 and ratio_mean <= GOAL_RATIO

    print(f"\nin process, per tile (ms), {len(peer_s) // len(tiles)} passes of {len(tiles)}")
    print(f"{'':>34} {'mean':>7} {'p50':>7} {'p99':>7} {'tiles/s':>8}")
    for name, row in (("peer: DeepZoomGenerator + JPEG", peer_stats),
                      ("ours: read_deepzoom_tile + JPEG", ours_stats)):
        print(f"{name:>34} {row['mean_ms']:7.2f} {row['p50_ms']:7.2f} {row['p99_ms']:7.2f} "
              f"{row['tiles_per_s']:8.1f}")
    print(f"\nservice over HTTP, per request (ms); ratios to the peer's mean "
          f"{peer_stats['mean_ms']:.2f} ms")
    print(f"{'clients':>7} {'pass':>5} {'requests':>8} {'errors':>6} {'p50':>7} {'p99':>7} "
          f"{'tiles/s':>8} {'p99/mean':>8} {'tput/peer':>9} {'cpu ms/req':>10} {'cores':>5}")
    for r in runs:
        print(f"{r['clients']:>7} {r['pass']:>5} {r['requests']:>8} {r['errors']:>6} "
              f"{r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['tiles_per_s']:8.1f} "
              f"{r['p99_ms'] / peer_stats['mean_ms']:8.2f} "
              f"{r['tiles_per_s'] / peer_stats['tiles_per_s']:9.2f} "
              f"{r['service_cpu_ms_per_request']:10.2f} {r['service_cores_busy']:5.2f}")
    print("slowest requests, 16 clients cold: " + ", ".join(
        f"{where} {ms:.0f} ms" for where, ms in cold16["slowest"]))
    for line in error_lines[:10]:
        print("error:", line)
    mean_kib = statistics.mean(body_bytes or [0]) / 1024
    print(f"\nserved tiles vs DeepZoomGenerator's at JPEG quality {args.quality}: worst mean "
          f"abs difference {worst_diff:.2f}; served JPEG {mean_kib:.1f} KiB mean")
    print(f"p99 @16 clients (cold) / peer mean = {ratio_mean:.2f}, / peer p50 = {ratio_p50:.2f}, "
          f"/ peer p99 = {ratio_p99:.2f}; errors {total_errors}; "
          f"goal p99/mean ≤ {GOAL_RATIO}× with 0 errors: "
          f"{'met' if met else 'NOT met'}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "tiles.json"
    out.write_text(json.dumps({
        "slide": SLIDE.name, "tiles": len(tiles), "deepzoom_levels": grid.level_count,
        "tile_size": grid.tile_size, "overlap": grid.overlap, "jpeg_quality": args.quality,
        "cpu_count": os.cpu_count(), "peer_in_process": peer_stats,
        "ours_in_process": ours_stats, "service": runs, "errors": total_errors,
        "error_samples": error_lines[:20], "worst_mean_abs_difference": round(worst_diff, 3),
        "served_jpeg_mean_bytes": round(statistics.mean(body_bytes or [0])),
        "p99_16_cold_over_peer_mean": round(ratio_mean, 3),
        "p99_16_cold_over_peer_p50": round(ratio_p50, 3),
        "p99_16_cold_over_peer_p99": round(ratio_p99, 3),
        "goal_ratio": GOAL_RATIO, "goal_met": met}, indent=1))
    print(f"→ {out}")


if __name__ == "__main__":
    main()
