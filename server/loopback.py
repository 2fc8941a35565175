"""A whole Flower deployment on one machine: SuperLink plus SuperNodes on loopback.

The same processes, flags, TLS and SuperNode authentication as across hospitals
(:mod:`pathloop.server.deployment`), on ``127.0.0.1`` with free ports. The deployment tests
and ``pathloop demo`` use it; the central team and the sites use ``pathloop server start``
and ``pathloop site join`` instead.

Every process runs in its own session and its output goes to ``<root>/logs/<name>.log``;
stopping a process stops its whole tree (the SuperLink's ServerApp, a SuperNode's
ClientApps).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from pathloop.server.credentials import (
    LOOPBACK_HOSTS,
    NodeKey,
    make_node_key,
    make_server_credentials,
)
from pathloop.server.deployment import (
    CLIENTAPP_MODULE,
    FlowerCli,
    ServerLayout,
    process_environment,
    site_node_command,
    superlink_command,
    supernode_command,
    write_cli_config,
)
from pathloop.server.errors import FederationError


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class LoopbackFederation:
    """SuperLink and SuperNodes on this machine, under ``root`` (a :class:`ServerLayout`)."""

    root: Path
    port: int = 0
    processes: dict[str, _Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.layout = ServerLayout(self.root)
        self.keys = self.root / "node-keys"
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        if not self.layout.credentials.ca_certificate.is_file():
            make_server_credentials(self.layout.credentials.ca_certificate.parent,
                                    LOOPBACK_HOSTS)
        self.address = f"127.0.0.1:{self.port}"
        write_cli_config(self.layout, self.address)
        self.cli = FlowerCli(self.layout)

    # -- the SuperLink ---------------------------------------------------------------------
    def start_superlink(self, ready_timeout: float = 60.0) -> None:
        """Start (or restart, with the same database) the SuperLink and wait until it answers."""
        self._spawn("superlink", superlink_command(self.layout, "127.0.0.1", self.port))
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                self.cli.runs()
                return
            except FederationError:
                if not self.processes["superlink"].alive():
                    raise FederationError(f"the SuperLink exited; see {self._log('superlink')}"
                                          ) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    # -- SuperNodes ------------------------------------------------------------------------
    def node_key(self, name: str) -> NodeKey:
        """The key pair of SuperNode ``name`` (made on first use)."""
        key = NodeKey.in_folder(self.keys, name)
        return key if key.private.is_file() else make_node_key(self.keys, name)

    def register(self, name: str) -> int:
        """Register SuperNode ``name``'s public key with the SuperLink; its node id."""
        return self.cli.register(self.node_key(name).public, name)

    def start_supernode(self, name: str, site_config: Path, threads: int | None = None
                        ) -> None:
        """Start SuperNode ``name`` for the site whose pathloop config is ``site_config``,
        as ``pathloop site join`` does: under pathloop's site node, which runs its ClientApps.

        ``threads`` caps the compute threads of its ClientApps (``OMP_NUM_THREADS``): sites
        sharing one machine's cores should share them, not each spin up one thread per core.
        """
        key = self.node_key(name)
        env = {} if threads is None else {"OMP_NUM_THREADS": str(threads),
                                          "MKL_NUM_THREADS": str(threads)}
        port = free_port()
        supernode = supernode_command(site_config, self.address,
                                      self.layout.credentials.ca_certificate, key.private, port)
        self._spawn(name, site_node_command(supernode, port), env)

    def wait_online(self, count: int, timeout: float = 90.0) -> list[dict[str, Any]]:
        """Wait until ``count`` SuperNodes are online; the node list."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.cli.nodes()
            online = [n for n in nodes if n.get("status") == "online"]
            if len(online) >= count:
                return online
            if time.monotonic() > deadline:
                raise FederationError(f"{len(online)} of {count} SuperNodes online after "
                                      f"{timeout:.0f} s: {nodes}")
            time.sleep(1.0)

    # -- processes -------------------------------------------------------------------------
    def exit_code(self, name: str, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for process ``name`` to exit; its code (None: running)."""
        try:
            return self.processes[name].popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def children(self, name: str) -> list[psutil.Process]:
        """The live descendants of process ``name`` (a SuperNode's ClientApps …)."""
        try:
            return psutil.Process(self.processes[name].popen.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def clientapps(self, name: str) -> list[psutil.Process]:
        """SuperNode ``name``'s running ClientApps (one per message it is answering)."""
        apps = []
        for child in self.children(name):
            try:
                if CLIENTAPP_MODULE in child.cmdline():
                    apps.append(child)
            except psutil.NoSuchProcess:
                continue
        return apps

    def kill(self, name: str) -> None:
        """SIGKILL process ``name`` and all its descendants (a crash, not a shutdown)."""
        self._stop(name, signal.SIGKILL)

    def stop(self, name: str) -> None:
        """SIGTERM process ``name`` and its descendants, SIGKILL what is left after 10 s."""
        self._stop(name, signal.SIGTERM)

    def close(self) -> None:
        for name in list(self.processes):
            if name != "superlink":
                self.stop(name)
        if "superlink" in self.processes:
            self.stop("superlink")

    def __enter__(self) -> LoopbackFederation:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None
               ) -> None:
        if name in self.processes and self.processes[name].alive():
            raise FederationError(f"{name} is already running")
        log = self._log(name)
        with open(log, "ab") as handle:
            popen = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                     env={**process_environment(), **(env or {})},
                                     cwd=self.root,
                                     start_new_session=True)
        self.processes[name] = _Process(name, popen, log)

    def _stop(self, name: str, sig: signal.Signals) -> None:
        process = self.processes.get(name)
        if process is None or not process.alive():
            return
        tree = [psutil.Process(process.popen.pid), *self.children(name)]
        for member in tree:
            try:
                member.send_signal(sig)
            except psutil.NoSuchProcess:
                continue
        _, alive = psutil.wait_procs(tree, timeout=10)
        for member in alive:
            try:
                member.kill()
            except psutil.NoSuchProcess:
                continue
        process.popen.wait(10)


def threads_per_node(nodes: int) -> int:
    """This machine's cores shared out among ``nodes`` SuperNodes (at least 1 each)."""
    return max(1, (os.cpu_count() or 1) // max(nodes, 1))


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


__all__ = ["LoopbackFederation", "free_port", "threads_per_node"]
