"""The check a site makes of a run's app bundle (FAB) before it answers any of the run's messages.

Whoever can reach the SuperLink can submit a run with a bundle of their own, and Flower's
``flwr-clientapp`` would unpack it, put it on ``sys.path`` and import the ClientApp it names:
foreign code, run as the site's service user. A site therefore never loads code from a
bundle (:mod:`~.clientapp_task` runs the installed pathloop ClientApp), and answers a run only
when its bundle is pathloop's own Flower App and nothing more:

- a zip archive holding exactly :data:`~pathloop.server.contract.APP_FILES` (no module, no
  folder, no other file), each small, with Flower's content list matching them;
- a ``pyproject.toml`` for project ``pathloop`` with no dependencies, whose components are
  exactly pathloop's ServerApp and ClientApp.

The content is checked, not pinned by digest: the bundle's run-config defaults and version
change with pathloop's releases and Flower's bundle format, and a site and the central team
may run different patch releases; what decides whether foreign code could run is whether the
bundle carries code or names other components, and that is what is checked. The archive is
read in memory (nothing is written to disk) and sizes are checked before anything is
decompressed.
"""

from __future__ import annotations

import hashlib
import io
import tomllib
import zipfile
from typing import Any

from pathloop.client.errors import ProtocolError
from pathloop.server.contract import APP_FILES, APP_NAME, CLIENT_APP, SERVER_APP

#: Bound on a bundle and on each of its files (pathloop's is under 2 kB).
MAX_BUNDLE_BYTES = 256 * 1024
MAX_FILE_BYTES = 64 * 1024
_CONTENT_LIST = ".info/CONTENT"


def check_bundle(content: bytes, digest: str) -> None:
    """Refuse (:class:`ProtocolError`) a bundle that is not exactly pathloop's Flower App.

    ``content`` is the FAB's bytes as the SuperNode holds them and ``digest`` the SHA-256
    hex digest the SuperLink named it by. Returns nothing when the bundle is pathloop's.
    """
    if len(content) > MAX_BUNDLE_BYTES:
        raise ProtocolError(f"app bundle: {len(content)} bytes, more than pathloop's "
                            f"({MAX_BUNDLE_BYTES} at most)")
    if hashlib.sha256(content).hexdigest() != digest:
        raise ProtocolError("app bundle: its content does not match its digest")
    files = _read_files(content)
    _check_content_list(files)
    _check_project(files["pyproject.toml"])


def _read_files(content: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise ProtocolError("app bundle: not a zip archive") from None
    with archive:
        entries = archive.infolist()
        names = [entry.filename for entry in entries]
        if len(names) != len(set(names)) or set(names) != APP_FILES:
            extra = sorted(set(names) - APP_FILES)
            missing = sorted(APP_FILES - set(names))
            raise ProtocolError(f"app bundle: files {sorted(names)} are not pathloop's "
                                f"{sorted(APP_FILES)} (extra: {extra}, missing: {missing})")
        for entry in entries:  # the sizes the archive claims, before decompressing
            if entry.file_size > MAX_FILE_BYTES:
                raise ProtocolError(f"app bundle: {entry.filename} is {entry.file_size} "
                                    f"bytes (pathloop's are under {MAX_FILE_BYTES})")
        try:
            return {entry.filename: archive.read(entry) for entry in entries}
        except (zipfile.BadZipFile, OSError, ValueError) as error:  # CRC, method …
            raise ProtocolError(f"app bundle: unreadable ({error})") from None


def _check_content_list(files: dict[str, bytes]) -> None:
    """Flower's ``.info/CONTENT``: one ``name,sha256,size`` line per other file."""
    listed: dict[str, str] = {}
    for line in files[_CONTENT_LIST].decode("utf-8", "replace").splitlines():
        name, _, rest = line.partition(",")
        listed[name] = rest.partition(",")[0]
    actual = {name: hashlib.sha256(data).hexdigest()
              for name, data in files.items() if name != _CONTENT_LIST}
    if listed != actual:
        raise ProtocolError(f"app bundle: {_CONTENT_LIST} does not list exactly its files "
                            f"and their digests")


def _check_project(text: bytes) -> None:
    try:
        project: dict[str, Any] = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ProtocolError(f"app bundle: pyproject.toml unreadable ({error})") from None
    meta = _table(project, "project")
    if meta.get("name") != APP_NAME:
        raise ProtocolError(f"app bundle: project {meta.get('name')!r}, not {APP_NAME!r}")
    if meta.get("dependencies", []) != [] or meta.get("optional-dependencies"):
        raise ProtocolError("app bundle: declares dependencies (pathloop's declares none: "
                            "its code is the installed package)")
    if "build-system" in project:
        raise ProtocolError("app bundle: declares a build system (pathloop's does not)")
    components = _table(_table(_table(project, "tool"), "flwr"), "app").get("components")
    expected = {"serverapp": SERVER_APP, "clientapp": CLIENT_APP}
    if components != expected:
        raise ProtocolError(f"app bundle: components {components!r}, not pathloop's "
                            f"{expected!r}")


def _table(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` when it is a table, else an empty one (checked by the caller)."""
    value = parent.get(key, {})
    return value if isinstance(value, dict) else {}


__all__ = ["MAX_BUNDLE_BYTES", "MAX_FILE_BYTES", "check_bundle"]
