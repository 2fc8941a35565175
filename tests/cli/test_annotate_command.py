"""`pathloop annotate SLIDE FILE [--format F] [--mpp]` with outline formats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shapely.geometry import box

from pathloop.client.annotations import Instance, InstanceSet, write_annotations


def _pathloop(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pathloop.client", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=120)


def test_annotate_reads_asap_and_dsa_and_names_bad_files(cmu_svs: Path,
                                                         tmp_path: Path) -> None:
    roots = tmp_path / "annotations"
    regions = InstanceSet((Instance(1, box(10, 10, 500, 400), "tumor"),
                           Instance(2, box(600, 600, 900, 1000), None)), (2220, 2967))
    write_annotations(regions, roots / "regions.xml", format="asap-xml")
    write_annotations(regions, roots / "regions.json", format="dsa-json")
    (roots / "broken.xml").write_text("<ASAP_Annotations><Annotations>")
    config = tmp_path / "pathloop.toml"
    config.write_text(f'site-id = "site-a"\ndata-dir = "{tmp_path / "node"}"\n'
                      f'slide-roots = ["{cmu_svs.parent}", "{roots}"]\n')
    assert _pathloop(config, "slides", "add", str(cmu_svs)).returncode == 0
    asap = _pathloop(config, "annotate", "1", str(roots / "regions.xml"), "--mpp", "2.0")
    assert asap.returncode == 0, asap.stderr
    assert "annotation 554×740 px at 2.0 µm/px stored (version 1)" in asap.stdout
    dsa = _pathloop(config, "annotate", "1", str(roots / "regions.json"), "--format",
                    "dsa-json")
    assert dsa.returncode == 0, dsa.stderr
    assert "annotation 2220×2967 px at 0.499 µm/px stored (version 2)" in dsa.stdout
    broken = _pathloop(config, "annotate", "1", str(roots / "broken.xml"))
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert broken.stderr.strip() == (f"error: {roots / 'broken.xml'}: not a readable ASAP XML "
                                     "file (malformed XML: no element found: line 1, column 31)")
