"""The import contracts in pyproject.toml catch what they forbid.

Each case copies the two package trees to a temporary folder, adds a throwaway module (two for
a cycle) that breaks a rule, and runs ``lint-imports`` against the copy: the contract meant
to catch it fails, naming the module, and every other contract still holds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

LAYERS = "Layers of the site node: each imports only the layers below it"
CYCLES = "No import cycles between the modules of a package"
CASES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    # The old lists of source modules missed the demo and the use cases: the root covers them.
    "openslide-outside-wsi": ({"client/demo/_throwaway.py": "import openslide\n"},
                              ("Only client.wsi reads slides through openslide/tiffslide",)),
    "torch-outside-segmentation": ({"client/usecases/_throwaway.py": "import torch\n"},
                                   ("Only client.segmentation imports torch and nnU-Net",)),
    "usecases-importing-the-api": (
        {"client/usecases/_throwaway.py": "from pathloop.client.api import create_app\n"},
        (LAYERS, CYCLES)),  # the API imports the use cases: upward is also a cycle
    "a-loose-module-in-client": ({"client/_throwaway.py": "import numpy\n"}, (LAYERS,)),
    "a-cycle-in-the-demo": (
        {"client/demo/_throwaway.py": "from pathloop.client.demo import _throwaway_too\n",
         "client/demo/_throwaway_too.py": "from pathloop.client.demo import _throwaway\n"},
        (CYCLES,)),
}


def _lint_copy(tmp_path: Path, modules: dict[str, str]) -> subprocess.CompletedProcess[str]:
    root = tmp_path / "src" / "pathloop"
    for side in ("client", "server"):
        shutil.copytree(REPO / side, root / side,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for module, source in modules.items():
        (root / module).write_text(source)
    # The copy comes first on the path: pathloop.client and .server are imported from it.
    path = os.pathsep.join(p for p in (str(tmp_path / "src"), os.environ.get("PYTHONPATH"))
                           if p)
    return subprocess.run([str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"),
                           "--no-cache"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("case", list(CASES))
def test_lint_imports_catches_a_forbidden_import(tmp_path: Path, case: str) -> None:
    modules, contracts = CASES[case]
    result = _lint_copy(tmp_path, modules)
    output = " ".join(result.stdout.split())  # lint-imports wraps long lines
    assert result.returncode == 1, output
    for contract in contracts:
        assert f"{contract} BROKEN" in output
    assert re.search(rf"Contracts: \d+ kept, {len(contracts)} broken", output), output
    assert "_throwaway" in output  # the broken import is named
