"""The deployment's pieces without running Flower: credentials, the Flower App and the
sites' check of it, command lines, the central team's status and report."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key
from flwr.app import Context, Message, RecordDict
from flwr.cli.build import build_fab_from_disk
from flwr.common.config import get_fab_config, validate_config
from PIL import Image
from support.flower import FakeGrid
from support.server_sites import fake_site, initial_model, server_settings
from typer.testing import CliRunner

from pathloop.client.cli.app import app as pathloop_cli
from pathloop.client.errors import ProtocolError
from pathloop.client.federation.bundle import check_bundle
from pathloop.client.federation.client_app import SITE_ERROR
from pathloop.client.federation.clientapp_task import BUNDLE_REFUSED, answer_task
from pathloop.server.credentials import make_node_key, make_server_credentials
from pathloop.server.deployment import (
    ServerLayout,
    process_environment,
    site_node_command,
    superlink_command,
    supernode_command,
)
from pathloop.server.errors import FederationError
from pathloop.server.federation import run_federation
from pathloop.server.flower_project import CLIENT_APP, SERVER_APP, write_flower_app
from pathloop.server.report import markdown, summarize, write_report
from pathloop.server.settings import ServerSettings

REPO = Path(__file__).resolve().parents[2]


def test_server_certificate_is_signed_by_the_ca_for_loopback_names(tmp_path: Path) -> None:
    made = make_server_credentials(tmp_path / "credentials")
    ca = x509.load_pem_x509_certificate(made.ca_certificate.read_bytes())
    certificate = x509.load_pem_x509_certificate(made.certificate.read_bytes())
    certificate.verify_directly_issued_by(ca)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost"}
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    for key in (made.key, made.ca_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with pytest.raises(FederationError, match="never overwritten"):
        make_server_credentials(tmp_path / "credentials")


def test_node_keys_are_openssh_ecdsa_p384_as_flower_reads_them(tmp_path: Path) -> None:
    key = make_node_key(tmp_path, "hospital-a")
    private = load_ssh_private_key(key.private.read_bytes(), password=None)
    public = load_ssh_public_key(key.public.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp384r1"
    assert private.public_key().public_numbers() == public.public_numbers()
    assert stat.S_IMODE(key.private.stat().st_mode) == 0o600
    with pytest.raises(FederationError, match="letters, digits"):
        make_node_key(tmp_path, "../escape")


def test_the_deploy_script_makes_both_kinds(tmp_path: Path) -> None:
    script = REPO / "deploy" / "make-credentials.sh"
    env = {**os.environ, "PATHLOOP": str(Path(sys.executable).with_name("pathloop"))}
    subprocess.run(["bash", str(script), "server", str(tmp_path / "state"), "fl.example.org",
                    "10.0.0.5"], check=True, env=env, capture_output=True)
    subprocess.run(["bash", str(script), "site", str(tmp_path / "keys"), "hospital-b"],
                   check=True, env=env, capture_output=True)
    certificate = x509.load_pem_x509_certificate(
        (tmp_path / "state" / "credentials" / "server.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["fl.example.org"]
    assert (tmp_path / "keys" / "hospital-b.pub").is_file()
    again = subprocess.run(["bash", str(script), "site", str(tmp_path / "keys"), "hospital-b"],
                           env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "never overwritten" in again.stderr


def test_the_flower_app_is_valid_small_and_declares_the_run_config(tmp_path: Path) -> None:
    folder = write_flower_app(tmp_path / "app")
    fab = build_fab_from_disk(folder)
    assert len(fab) < 10_000  # the code is the installed pathloop, not in the bundle
    config = get_fab_config(fab)
    valid, errors, _ = validate_config(config, check_module=False)
    assert valid, errors
    app = config["tool"]["flwr"]["app"]
    assert app["components"] == {"serverapp": SERVER_APP, "clientapp": CLIENT_APP}
    assert set(app["config"]) == {f.replace("_", "-") for f in ServerSettings.model_fields}
    assert app["config"]["round-timeout"] == 3600.0


def test_command_lines_turn_on_tls_and_node_authentication(tmp_path: Path) -> None:
    layout = ServerLayout(tmp_path)
    with pytest.raises(FederationError, match=r"ca\.crt: missing"):
        superlink_command(layout)
    made = make_server_credentials(tmp_path / "credentials")
    command = superlink_command(layout, "0.0.0.0", 9300)
    for flag in ("--ssl-ca-certfile", "--ssl-certfile", "--ssl-keyfile",
                 "--enable-supernode-auth", "--disable-runtime-dependency-installation"):
        assert flag in command
    assert "--insecure" not in command
    key = make_node_key(tmp_path / "keys", "a")
    config = tmp_path / "site.toml"
    config.write_text('site-id = "a"\n')
    node = supernode_command(config, "fl:9300", made.ca_certificate, key.private, 9094)
    assert "--auth-supernode-private-key" in node and "--insecure" not in node
    assert node[-1] == f"site-config='{config.resolve()}'"
    with pytest.raises(FederationError, match="no such SuperNode private key"):
        supernode_command(config, "fl:9300", made.ca_certificate, tmp_path / "nope", 9094)


def test_every_flower_process_is_started_with_telemetry_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLWR_TELEMETRY_ENABLED", "1")  # an operator's shell cannot turn it on
    assert process_environment()["FLWR_TELEMETRY_ENABLED"] == "0"


@pytest.fixture()
def finished_federation(tmp_path: Path) -> ServerLayout:
    layout = ServerLayout(tmp_path / "state")
    initial_model(tmp_path / "initial")
    grid = FakeGrid({7: fake_site(0.01, 10, dice=0.6), 8: fake_site(0.02, 30, dice=0.8),
                     9: fake_site(0.0, 5, corrupt=lambda a: a.clear())})
    settings = server_settings(tmp_path, checkpoint_dir=str(layout.checkpoints))
    run_federation(grid, settings)  # type: ignore[arg-type]
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.record_site(7, "hospital-a")
    layout.record_site(8, "hospital-b")
    return layout


def test_report_shows_lineage_and_dice_per_site_per_round(finished_federation: ServerLayout,
                                                          tmp_path: Path) -> None:
    summary = summarize(finished_federation.checkpoints, finished_federation.site_names())
    assert [v.version for v in summary.versions] == [0, 1, 2]
    every_site = {"hospital-a": 0.6, "hospital-b": 0.8, "9": 0.7}
    assert summary.dice == {0: every_site, 1: every_site, 2: every_site}
    text = markdown(summary)
    assert "| 1 | 0 | fedavg | hospital-a, hospital-b | 40 | 10 | 1 | 0.700 |" in text
    assert "version 1: 9:" in text  # the rejected update, by node
    report, plot = write_report(summary, tmp_path / "report")
    assert "![Dice per round]" in report.read_text()
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width > 400


def test_server_status_and_report_commands(finished_federation: ServerLayout,
                                           tmp_path: Path) -> None:
    runner = CliRunner()
    status = runner.invoke(pathloop_cli, ["server", "status", str(finished_federation.root)])
    assert status.exit_code == 0, status.output
    assert "hospital-a, hospital-b" in status.output
    assert "SuperLink not reachable" in status.output  # no `server start` here
    report = runner.invoke(pathloop_cli, ["server", "report", str(finished_federation.root),
                                          "--out", str(tmp_path / "out")])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "out" / "dice_per_round.png").is_file()


def _fab(folder: Path, edit: Callable[[Path], None] | None = None) -> tuple[bytes, str]:
    """pathloop's Flower App as ``flwr run`` bundles it, changed by ``edit`` first."""
    write_flower_app(folder)
    if edit is not None:
        edit(folder)
    content = build_fab_from_disk(folder)
    return content, hashlib.sha256(content).hexdigest()


def _with_project(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        project = tomllib.loads((folder / "pyproject.toml").read_text())
        change(project)
        (folder / "pyproject.toml").write_text(tomli_w.dumps(project))
    return edit


def _components(project: dict[str, Any], clientapp: str) -> None:
    project["tool"]["flwr"]["app"]["components"]["clientapp"] = clientapp


FOREIGN_BUNDLES: dict[str, tuple[Callable[[Path], None], str]] = {
    "an extra module": (lambda f: (f / "evil.py").write_text("import os\n"),
                        r"extra: \['evil.py'\]"),
    "a package": (lambda f: (f / "pkg").mkdir() or (f / "pkg" / "__init__.py").write_text(""),
                  r"extra: \['pkg/__init__.py'\]"),
    "another ClientApp": (_with_project(lambda p: _components(p, "evil:app")),
                          "components .*evil:app"),
    "an installed module as ClientApp": (
        _with_project(lambda p: _components(p, "pathloop.server.flower_app:app")),
        "components"),
    "an extra component": (_with_project(
        lambda p: p["tool"]["flwr"]["app"]["components"].update(agentapp="x:app")),
        "components"),
    "a dependency": (_with_project(
        lambda p: p["project"].update(dependencies=["evil-package"])), "dependencies"),
    "another project": (_with_project(lambda p: p["project"].update(name="other")),
                        "project 'other'"),
}


def test_the_site_accepts_pathloops_own_bundle(tmp_path: Path) -> None:
    check_bundle(*_fab(tmp_path / "app"))


@pytest.mark.parametrize("kind", sorted(FOREIGN_BUNDLES))
def test_the_site_refuses_a_bundle_that_is_not_pathloops(tmp_path: Path, kind: str) -> None:
    edit, reason = FOREIGN_BUNDLES[kind]
    with pytest.raises(ProtocolError, match=reason):
        check_bundle(*_fab(tmp_path / "app", edit))


def test_the_site_refuses_a_bundle_whose_bytes_are_not_what_flower_lists(
        tmp_path: Path) -> None:
    content, digest = _fab(tmp_path / "app")
    with pytest.raises(ProtocolError, match="does not match its digest"):
        check_bundle(content, hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ProtocolError, match="not a zip archive"):
        check_bundle(b"PK not a zip", hashlib.sha256(b"PK not a zip").hexdigest())
    # The README swapped after Flower listed the files' digests.
    swapped = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(swapped, "w") as out:
        for entry in source.infolist():
            data = source.read(entry)
            out.writestr(entry, b"changed" if entry.filename == "README.md" else data)
    with pytest.raises(ProtocolError, match="does not list exactly"):
        check_bundle(swapped.getvalue(), hashlib.sha256(swapped.getvalue()).hexdigest())
    assert digest == hashlib.sha256(content).hexdigest()


def test_a_refused_bundle_gets_an_error_reply_and_the_installed_app_answers_ours(
        tmp_path: Path) -> None:
    FakeGrid({})  # a message takes its run id from the process's task identity
    message = Message(RecordDict(), dst_node_id=7, message_type="query")
    context = Context(run_id=1, node_id=7, node_config={}, state=RecordDict(), run_config={})
    foreign = _fab(tmp_path / "foreign", FOREIGN_BUNDLES["an extra module"][0])
    reply, details = answer_task(message, context, *foreign)
    assert reply.has_error() and reply.error.code == BUNDLE_REFUSED
    assert reply.error.reason.startswith("the site runs only pathloop's own ClientApp")
    assert details == reply.error.reason
    # pathloop's bundle: the installed ClientApp answers (this site has no config: its error)
    reply, details = answer_task(message, context, *_fab(tmp_path / "ours"))
    assert details == "" and reply.has_error()
    assert reply.error.code == SITE_ERROR and "ConfigError" in reply.error.reason


def test_the_supernode_runs_no_clientapp_itself_and_listens_on_loopback(
        tmp_path: Path) -> None:
    made = make_server_credentials(tmp_path / "credentials")
    key = make_node_key(tmp_path / "keys", "a")
    config = tmp_path / "site.toml"
    config.write_text('site-id = "a"\n')
    node = supernode_command(config, "fl:9300", made.ca_certificate, key.private, 9094)
    assert node[node.index("--isolation") + 1] == "process"
    assert node[node.index("--host") + 1] == "127.0.0.1"
    assert "--health-server-address" not in node  # no other port
    site = site_node_command(node, 9094)
    assert site[:3] == [sys.executable, "-m", "pathloop.client.federation.site_node"]
    assert site[site.index("--runtime-api-address") + 1] == "127.0.0.1:9094"
    assert site[site.index("--") + 1:] == node
