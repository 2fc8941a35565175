"""Site settings: loaded once from TOML, validated, paths made absolute."""

from __future__ import annotations

from pathlib import Path

import pytest

from pathloop.client.errors import ConfigError
from pathloop.client.settings import SiteSettings


def test_settings_from_file_resolve_relative_paths(tmp_path: Path) -> None:
    config = tmp_path / "pathloop.toml"
    config.write_text('site-id = "hospital-a"\ndata-dir = "data"\nslide-roots = ["slides"]\n'
                      "[tiling]\nmpp = 0.5\ntile-size = 512\n")
    settings = SiteSettings.from_file(config)
    assert settings.site_id == "hospital-a"
    assert settings.data_dir == tmp_path / "data"
    assert settings.slide_roots == (tmp_path / "slides",)
    assert settings.tiling.mpp == 0.5
    assert settings.tiling.step == 512
    assert settings.db_url == f"sqlite:///{tmp_path / 'data' / 'pathloop.db'}"


@pytest.mark.parametrize(("text", "message"), [
    ('site-id = "a b"', "site-id"),
    ("[tiling]\nmpp = -1", "tiling.mpp"),
    ("unknown-key = 1", "unknown-key"),
    ("site-id = ", "not valid TOML"),
    ("[federation]\nseed = -1", "federation.seed"),
    ("[federation]\nseed = 99999999999999999999", "federation.seed"),
    ('[inference]\nprecision = "float16"', "inference.precision"),
])
def test_bad_settings_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "pathloop.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        SiteSettings.from_file(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        SiteSettings.from_file(tmp_path / "nope.toml")


def test_the_example_config_loads() -> None:
    # deploy/pathloop.example.toml is what an admin copies: every key in it must be valid.
    example = Path(__file__).resolve().parents[1] / "deploy" / "pathloop.example.toml"
    settings = SiteSettings.from_file(example)
    assert settings.site_id == "hospital-a"
    assert settings.inference.precision == "auto"
