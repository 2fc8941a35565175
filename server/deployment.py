"""The central team's Flower deployment: a SuperLink with TLS and SuperNode authentication.

Everything lives in one state folder (:class:`ServerLayout`)::

    <state>/
      credentials/   ca.crt (give to sites), ca.key, server.pem, server.key (stay here)
      superlink.db   the SuperLink's state: registered SuperNodes, runs (keep it)
      flwr-home/     the flwr CLI's connection (config.toml) to this SuperLink
      sites.json     the names the central team registered each SuperNode under
      checkpoints/   the global model versions (the ServerApp's checkpoint-dir)

:func:`superlink_command` is the one command line the SuperLink runs with (Flower 1.41: one
HTTPS port serves SuperNodes, the CLI and the ServerApp). :class:`FlowerCli` drives the
``flwr`` CLI against it: register SuperNodes, start a run of the pathloop Flower App, follow
runs. Nothing here touches model weights; that is :mod:`pathloop.server.federation`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from pathloop.server.contract import SITE_CONFIG_KEY
from pathloop.server.credentials import ServerCredentials
from pathloop.server.errors import FederationError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9300
#: The name of the flwr CLI's connection to this SuperLink.
CONNECTION = "pathloop"
FINISHED = "finished:"
#: A SuperNode's own API (its Runtime API: tasks, messages, tokens) listens here only.
SUPERNODE_HOST = "127.0.0.1"
SITE_NODE_MODULE = "pathloop.client.federation.site_node"
#: What a site's ClientApp processes run (the loopback deployment finds them by it).
CLIENTAPP_MODULE = "pathloop.client.federation.clientapp_task"


@dataclass(frozen=True)
class ServerLayout:
    """The central team's state folder (see the module docstring)."""

    root: Path

    @property
    def credentials(self) -> ServerCredentials:
        return ServerCredentials.in_folder(self.root / "credentials")

    @property
    def database(self) -> Path:
        return self.root / "superlink.db"

    @property
    def flwr_home(self) -> Path:
        return self.root / "flwr-home"

    @property
    def sites(self) -> Path:
        return self.root / "sites.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def site_names(self) -> dict[int, str]:
        """Node id → the name the central team registered it under."""
        if not self.sites.is_file():
            return {}
        try:
            return {int(k): str(v) for k, v in json.loads(self.sites.read_text()).items()}
        except (ValueError, AttributeError) as error:
            raise FederationError(f"{self.sites}: unreadable ({error})") from None

    def record_site(self, node_id: int, name: str) -> None:
        names = self.site_names()
        names[node_id] = name
        partial = self.sites.with_suffix(".json.partial")
        partial.write_text(json.dumps({str(k): v for k, v in sorted(names.items())}, indent=1))
        os.replace(partial, self.sites)


def superlink_command(layout: ServerLayout, host: str = DEFAULT_HOST,
                      port: int = DEFAULT_PORT) -> list[str]:
    """The SuperLink's command line: TLS, SuperNode authentication, state kept on disk.

    Runtime dependency installation is off: the app's code is the installed pathloop, and
    the aggregation host does not install packages on a run's behalf.
    """
    credentials = layout.credentials
    credentials.check()
    return [_flower_tool("flower-superlink"),
            "--ssl-ca-certfile", str(credentials.ca_certificate),
            "--ssl-certfile", str(credentials.certificate),
            "--ssl-keyfile", str(credentials.key),
            "--enable-supernode-auth",
            "--host", host, "--port", str(port),
            "--database", str(layout.database),
            "--disable-runtime-dependency-installation"]


def supernode_command(site_config: Path, superlink: str, root_certificates: Path,
                      private_key: Path, port: int) -> list[str]:
    """A site's SuperNode command line: TLS to the SuperLink, authenticated by its key.

    ``site_config`` is the site's pathloop TOML file, which the ClientApp reads through the
    node config; ``port`` is the SuperNode's own Runtime API port (one per SuperNode on a
    machine), bound to 127.0.0.1. ``--isolation process``: the SuperNode starts no ClientApp
    itself (Flower's would import the code of whatever bundle a run carries); the site node
    around it does (:func:`site_node_command`). Kept beside :func:`superlink_command`
    because both are Flower deployment knowledge, not model code.
    """
    for path, what in ((site_config, "site config"), (root_certificates, "CA certificate"),
                       (private_key, "SuperNode private key")):
        if not path.is_file():
            raise FederationError(f"{path}: no such {what} file")
    if "'" in str(site_config.resolve()):
        raise FederationError(f"{site_config}: a path with a single quote cannot travel in "
                              "Flower's node config; move the file")
    return [_flower_tool("flower-supernode"),
            "--superlink", superlink,
            "--root-certificates", str(root_certificates.resolve()),
            "--auth-supernode-private-key", str(private_key.resolve()),
            "--isolation", "process",
            "--host", SUPERNODE_HOST, "--port", str(port),
            "--node-config", f"{SITE_CONFIG_KEY}='{site_config.resolve()}'"]


def site_node_command(supernode: list[str], port: int) -> list[str]:
    """The site's node: the SuperNode ``supernode`` (its Runtime API on ``port``) run by
    pathloop's site node, which answers every ClientApp task with the installed pathloop
    ClientApp and refuses a run whose bundle is not pathloop's
    (:mod:`pathloop.client.federation.site_node`; named here, not imported: the
    aggregation host needs no site code)."""
    return [sys.executable, "-m", SITE_NODE_MODULE,
            "--runtime-api-address", f"{SUPERNODE_HOST}:{port}", "--", *supernode]


TELEMETRY_OFF = {"FLWR_TELEMETRY_ENABLED": "0"}
"""Flower reports usage (with host details) to flower.ai unless this is in the environment
of the process when it imports flwr; nothing of a hospital's may leave it, so every Flower
process pathloop starts has it."""


def process_environment() -> dict[str, str]:
    """The environment for Flower's processes: telemetry off (:data:`TELEMETRY_OFF`, inherited
    by the ServerApps and ClientApps they start); they start ``flwr-serverapp`` and
    ``flwr-clientapp`` by name, so this interpreter's scripts folder leads PATH."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, **TELEMETRY_OFF,
            "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}


def write_cli_config(layout: ServerLayout, address: str) -> Path:
    """The flwr CLI's connection to this SuperLink (``$FLWR_HOME/config.toml``)."""
    ca = layout.credentials.ca_certificate.resolve()
    layout.flwr_home.mkdir(parents=True, exist_ok=True)
    path = layout.flwr_home / "config.toml"
    path.write_text(f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
                    f'address = "{address}"\nroot-certificates = "{ca}"\n')
    return path


class FlowerCli:
    """The ``flwr`` CLI, pointed at one SuperLink through ``FLWR_HOME``."""

    def __init__(self, layout: ServerLayout, timeout: float = 120.0) -> None:
        if not (layout.flwr_home / "config.toml").is_file():
            raise FederationError(f"{layout.flwr_home}: no CLI connection; start the server "
                                  "with `pathloop server start` first")
        self.layout = layout
        self.timeout = timeout

    def register(self, public_key: Path, name: str) -> int:
        """Register a site's SuperNode public key; return its node id."""
        if not public_key.is_file():
            raise FederationError(f"{public_key}: no such public key file")
        reply = self._json("supernode", "register", str(public_key), CONNECTION,
                           "--name", name)
        node_id = int(reply["node-id"])
        self.layout.record_site(node_id, name)
        return node_id

    def nodes(self) -> list[dict[str, Any]]:
        """The registered SuperNodes with their status (online, offline, registered)."""
        return list(self._json("supernode", "list", CONNECTION)["nodes"])

    def start_run(self, app: Path, run_config: Mapping[str, Any]) -> int:
        """Submit a run of the Flower App in ``app`` with these run-config overrides.

        The overrides travel as a TOML file: any path or string survives unquoted.
        """
        args = ["run", str(app), CONNECTION]
        with tempfile.TemporaryDirectory() as folder:
            if run_config:
                overrides = Path(folder) / "run-config.toml"
                overrides.write_text(tomli_w.dumps(dict(run_config)))
                args += ["--run-config", str(overrides)]
            reply = self._json(*args)
        if reply.get("run-id") is None:
            raise FederationError(f"the SuperLink did not accept the run: {reply}")
        return int(reply["run-id"])

    def runs(self) -> list[dict[str, Any]]:
        return list(self._json("list", CONNECTION)["runs"])

    def run_status(self, run_id: int) -> str:
        """Flower's status of a run: ``pending``, ``running``, ``finished:completed`` …"""
        for run in self._json("list", CONNECTION, "--run-id", str(run_id))["runs"]:
            if int(run["run-id"]) == run_id:
                return str(run["status"])
        raise FederationError(f"run {run_id}: unknown to the SuperLink")

    def wait(self, run_id: int, timeout: float, poll: float = 5.0) -> str:
        """Block until the run finishes (``flwr run`` exits 0 even when a run fails).

        Each poll is a ``flwr`` process (about a CPU-second): poll gently.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self.run_status(run_id)
            if status.startswith(FINISHED):
                return status
            if time.monotonic() > deadline:
                raise FederationError(f"run {run_id}: still {status} after {timeout:.0f} s")
            time.sleep(poll)

    def stop(self, run_id: int) -> None:
        self._call("stop", str(run_id), CONNECTION)

    def _json(self, *args: str) -> dict[str, Any]:
        output = self._call(*args, "--format", "json")
        start = output.find("{")
        try:
            reply = json.loads(output[start:]) if start >= 0 else None
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise FederationError(f"flwr {' '.join(args)}: unexpected output {output!r}")
        if reply.get("success") is False:
            raise FederationError(f"flwr {' '.join(args)}: {reply.get('error-message', reply)}")
        return reply

    def _call(self, *args: str) -> str:
        env = {**process_environment(), "FLWR_HOME": str(self.layout.flwr_home.resolve())}
        try:
            done = subprocess.run([_flower_tool("flwr"), *args], env=env, capture_output=True,
                                  text=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise FederationError(f"flwr {' '.join(args)}: no answer from the SuperLink in "
                                  f"{self.timeout:.0f} s") from None
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise FederationError(f"flwr {' '.join(args)} failed: "
                                  f"{detail[-1] if detail else done.returncode}")
        return done.stdout


def _flower_tool(name: str) -> str:
    """A Flower console script: beside this interpreter (the venv) first, then on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FederationError(f"{name}: not found (install pathloop's dependencies: flwr)")
    return found


__all__ = ["CLIENTAPP_MODULE", "CONNECTION", "DEFAULT_HOST", "DEFAULT_PORT", "SITE_NODE_MODULE",
           "SUPERNODE_HOST", "TELEMETRY_OFF", "FlowerCli", "ServerLayout",
           "process_environment", "site_node_command", "superlink_command",
           "supernode_command", "write_cli_config"]
