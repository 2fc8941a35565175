"""``pathloop server …``: the central team's commands (mounted into the ``pathloop`` CLI).

Every command takes the server's state folder (:class:`ServerLayout`)::

    pathloop server credentials STATE --host fl.example.org   # once: CA + SuperLink cert
    pathloop server start STATE --host 0.0.0.0                # the SuperLink (foreground)
    pathloop server register STATE site-a.pub --name site-a   # each site's public key
    pathloop server run STATE --initial-model initial/ --rounds 5
    pathloop server run STATE --aggregation-rule median --set max-examples-ratio=3
    pathloop server status STATE
    pathloop server report STATE --out report/
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pathloop.server.deployment import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    FlowerCli,
    ServerLayout,
    process_environment,
    superlink_command,
    write_cli_config,
)
from pathloop.server.errors import FederationError

app = typer.Typer(help="The aggregation server: SuperLink, sites, runs, global versions.",
                  no_args_is_help=True)
# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

STATE = typer.Argument(..., help="The server's state folder (credentials, database, "
                                 "checkpoints).")


@app.command("credentials")
def credentials(
    state: Path = STATE,
    host: list[str] = typer.Option(["localhost", "127.0.0.1", "::1"], "--host",
                                   help="A name or IP the SuperLink is reached by "
                                        "(repeat for several)."),
    days: int = typer.Option(825, help="Validity of the certificates."),
) -> None:
    """Make the federation's CA and the SuperLink's TLS certificate (never overwrites)."""
    from pathloop.server.credentials import make_server_credentials

    made = make_server_credentials(ServerLayout(state).credentials.ca_certificate.parent,
                                   tuple(host), days)
    console.print(f"CA certificate (give it to every site): {made.ca_certificate}\n"
                  f"SuperLink certificate for {', '.join(host)}: {made.certificate}\n"
                  f"private keys (keep them here, mode 0600): {made.key}, {made.ca_key}")


@app.command("start")
def start(
    state: Path = STATE,
    host: str = typer.Option(DEFAULT_HOST, help="Address to listen on (0.0.0.0: all)."),
    port: int = typer.Option(DEFAULT_PORT, help="The one port for SuperNodes and the CLI."),
    address: str | None = typer.Option(None, help="How this machine's flwr CLI reaches the "
                                                  "SuperLink (default: 127.0.0.1:PORT)."),
) -> None:
    """Run the SuperLink in the foreground: TLS on, only registered SuperNodes admitted."""
    layout = ServerLayout(state)
    command = superlink_command(layout, host, port)
    write_cli_config(layout, address or f"127.0.0.1:{port}")
    console.print(f"SuperLink on {host}:{port}, state in {layout.root}")
    os.execve(command[0], command, process_environment())


@app.command("register")
def register(
    state: Path = STATE,
    public_key: Path = typer.Argument(..., help="The site's SuperNode public key (.pub)."),
    name: str = typer.Option(..., help="The site's name in reports (no patient data)."),
) -> None:
    """Admit a site's SuperNode: register its public key with the running SuperLink."""
    node_id = FlowerCli(ServerLayout(state)).register(public_key, name)
    console.print(f"registered {name} as node {node_id}")


@app.command("run")
def run(
    state: Path = STATE,
    initial_model: Path | None = typer.Option(None, help="First run only: a folder from "
                                                          "`pathloop model export`."),
    rounds: int = typer.Option(2, help="Rounds in this run."),
    strategy: str = typer.Option("fedavg", help="fedavg or fedprox."),
    min_sites: int = typer.Option(2, help="Fewest sites a round starts and trains with."),
    round_timeout: float = typer.Option(3600.0, help="Seconds a round waits for replies."),
    local_epochs: int = typer.Option(3, help="Epochs each site fine-tunes per round."),
    aggregation_rule: str = typer.Option("mean", help="mean (weighted), trimmed-mean or "
                                                      "median (docs/federation.md)."),
    settings: list[str] = typer.Option([], "--set", help="Any other run-config key as "
                                       "KEY=VALUE, e.g. --set clip-relative-change=0.3; "
                                       "repeatable."),
    wait: bool = typer.Option(True, help="Wait for the run to finish."),
) -> None:
    """Submit a federated run of the pathloop Flower App; it resumes from the newest version."""
    from pathloop.server.flower_project import write_flower_app
    from pathloop.server.settings import ServerSettings

    layout = ServerLayout(state)
    config: dict[str, object] = {
        "checkpoint-dir": str(layout.checkpoints.resolve()), "num-server-rounds": rounds,
        "strategy": strategy, "min-train-nodes": min_sites, "min-available-nodes": min_sites,
        "round-timeout": round_timeout, "local-epochs": local_epochs,
        "aggregation-rule": aggregation_rule, **_assignments(settings)}
    if initial_model is not None:
        config["initial-model"] = str(initial_model.resolve())
    ServerSettings.from_run_config(config, source="pathloop server run")  # refused here, early
    cli = FlowerCli(layout)
    run_id = cli.start_run(write_flower_app(layout.root / "app"), config)
    console.print(f"run {run_id} submitted")
    if wait:
        status = cli.wait(run_id, timeout=rounds * round_timeout * 2 + 600)
        console.print(f"run {run_id}: {status}")
        if status != "finished:completed":
            raise FederationError(f"run {run_id} ended {status}; see the SuperLink's log")


def _assignments(pairs: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` strings as run-config entries (a TOML value, else the text)."""
    import tomllib

    config: dict[str, object] = {}
    for pair in pairs:
        key, sign, raw = pair.partition("=")
        if not sign or not key.strip():
            raise FederationError(f"--set {pair!r}: expected KEY=VALUE")
        try:
            config[key.strip()] = tomllib.loads(f"value = {raw.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            config[key.strip()] = raw.strip()
    return config


@app.command("status")
def status(state: Path = STATE) -> None:
    """Global versions, contributing sites, Dice per site; sites and runs if reachable."""
    from pathloop.server.report import VERSION_COLUMNS, summarize

    layout = ServerLayout(state)
    summary = summarize(layout.checkpoints, layout.site_names())
    versions = Table(*VERSION_COLUMNS, "created", title="global versions")
    for v in summary.versions:
        versions.add_row(*summary.version_row(v), v.created[:19])
    console.print(versions)
    try:
        cli = FlowerCli(layout, timeout=20)
        nodes, runs = cli.nodes(), cli.runs()
    except FederationError as error:
        console.print(f"SuperLink not reachable ({error})")
        return
    names = layout.site_names()
    sites = Table(title="sites (SuperNodes)")
    for column in ("node", "name", "status", "online since"):
        sites.add_column(column)
    for node in nodes:
        sites.add_row(node["node-id"], names.get(int(node["node-id"]), "?"),
                      str(node["status"]), str(node.get("online-at") or "—"))
    console.print(sites)
    table = Table(title="runs")
    for column in ("run", "status", "elapsed"):
        table.add_column(column)
    for one in runs:
        table.add_row(str(one["run-id"]), str(one["status"]), str(one.get("elapsed", "")))
    console.print(table)


@app.command("report")
def report(
    state: Path = STATE,
    out: Path = typer.Option(Path("federation-report"), help="Folder for the report."),
) -> None:
    """Write the lineage table and a PNG of Dice per site per round."""
    from pathloop.server.report import summarize, write_report

    layout = ServerLayout(state)
    text, plot = write_report(summarize(layout.checkpoints, layout.site_names()), out)
    console.print(f"wrote {text} and {plot}")


__all__ = ["app"]
