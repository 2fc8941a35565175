"""Site settings: built once at the edge (CLI, API, ClientApp) and passed down.

A site is configured by one TOML file (see ``deploy/pathloop.example.toml``)::

    site-id = "hospital-a"
    data-dir = "/var/lib/pathloop"
    slide-roots = ["/mnt/slides"]

    [tiling]
    mpp = 1.0
    tile-size = 256

Keys are kebab-case in the file and snake_case in Python. Nothing below the edge reads
environment variables or files on its own: it receives a :class:`SiteSettings`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pathloop.client.errors import ConfigError

_SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              alias_generator=lambda name: name.replace("_", "-"))


class TilingSettings(_Section):
    """How slides are cut into tiles.

    Attributes
    ----------
    mpp:
        Resolution of the tiles in µm/px.
    tile_size:
        Tile edge in pixels at ``mpp``.
    stride:
        Step between tile origins in pixels at ``mpp`` (``tile_size`` means no overlap).
    thumbnail_mpp:
        Resolution in µm/px of the thumbnail the tissue mask is computed on.
    min_tissue_fraction:
        A tile is kept when at least this fraction of it lies on the tissue mask.
    max_background_fraction:
        A tile is dropped when more than this fraction of its pixels are black or white
        (the UGA rule: 0.7).
    """

    mpp: float = Field(1.0, gt=0)
    tile_size: int = Field(256, ge=16, le=8192)
    stride: int | None = Field(None, ge=1)
    thumbnail_mpp: float = Field(8.0, gt=0)
    min_tissue_fraction: float = Field(0.25, ge=0, le=1)
    max_background_fraction: float = Field(0.7, ge=0, le=1)

    @property
    def step(self) -> int:
        """Stride in pixels at ``mpp`` (defaults to the tile size)."""
        return self.stride or self.tile_size


class FederationSettings(_Section):
    """What the site trains and evaluates on in federated rounds.

    Attributes
    ----------
    training_images, training_masks:
        Folders of RGB tiles and label masks named alike (the site's own training data);
        the site's corrections are added to them every round.
    held_out_images, held_out_masks:
        Tiles and masks the site scores each global model on (never trained on).
    mpp:
        Resolution of those tiles in µm/px (the model's).
    labels:
        Label names, value 0 first.
    profile:
        Training profile (``tiny`` on CPUs, ``nnunet`` with a GPU).
    device:
        Torch device for training and evaluation.
    rerank_k:
        After each round, predict the site's slides with the new global model and put the
        top ``rerank_k`` patches per slide in the worklist (0: do not). The initial model
        (global version 0) is scored but does not re-rank.
    seed:
        Seeds this site's fine-tuning in every round (patch sampling and augmentation;
        round ``r`` draws from ``seed`` and ``r``), so a rerun of the same rounds repeats up
        to rounding; ``None`` (the default) draws afresh every run.
    max_local_epochs, max_learning_rate, max_proximal_mu:
        This site's limits on what a round may ask (``local-epochs`` in 1…max,
        ``learning-rate`` in (0, max], ``proximal-mu`` in [0, max]); a round outside
        them, or with a value that is not a finite number, is refused with an error reply.
    adopt_margin:
        A new model version (a global one from the federation, or one the site trained)
        becomes the site's current model only if its held-out Dice is at least the current
        model's minus this margin; otherwise it is kept but refused, and the refusal counted.
    adopt_without_held_out:
        When the site has no held-out tiles to score on: adopt new versions anyway, with a
        warning in the log (``true``, the default), or refuse them (``false``).
    """

    training_images: Path | None = None
    training_masks: Path | None = None
    held_out_images: Path | None = None
    held_out_masks: Path | None = None
    mpp: float = Field(0.5, gt=0)
    labels: tuple[str, ...] = ("background", "foreground")
    profile: str = "tiny"
    device: str = "cpu"
    rerank_k: int = Field(0, ge=0)
    seed: int | None = Field(None, ge=0, lt=2**20)
    max_local_epochs: int = Field(100, ge=1, le=100_000)
    max_learning_rate: float = Field(0.1, gt=0, le=10, allow_inf_nan=False)
    max_proximal_mu: float = Field(10.0, ge=0, le=1e6, allow_inf_nan=False)
    adopt_margin: float = Field(0.02, ge=0, le=1, allow_inf_nan=False)
    adopt_without_held_out: bool = True


Precision = Literal["auto", "float32", "bfloat16"]
"""How the fold networks compute a forward pass.

``"float32"``: as trained. ``"bfloat16"``: under torch's autocast with bfloat16, the CPU
counterpart of the float16 autocast nnU-Net's predictor uses on a GPU (convolutions in
bfloat16; normalisation, softmax and the uncertainty in float32). ``"auto"``: bfloat16 on a
CPU that computes it natively (AVX512-BF16 or AMX), float32 everywhere else. Measured on the
demo's held-out slides (2-core AMD EPYC with AVX512-BF16): 1.5-1.8× faster, Dice within
0.0003 of float32, mean |Δ uncertainty| 0.0008-0.0018 on tissue (docs/inference.md).
"""


class InferenceSettings(_Section):
    """How the site's fold ensemble predicts (slides, worklist refreshes, held-out scores).

    Attributes
    ----------
    precision:
        ``auto`` (the default), ``float32`` or ``bfloat16``; see :data:`Precision`.
        ``float32`` reproduces nnU-Net's CPU numbers to rounding; training is always float32.
    """

    precision: Precision = "auto"


class ApiSettings(_Section):
    """The site service (``pathloop serve``): the API and the viewer.

    Attributes
    ----------
    host:
        Address to bind; ``127.0.0.1`` keeps the service on this machine. Anything else
        exposes it to the network: put it behind the hospital's TLS reverse proxy.
    port:
        TCP port.
    require_token:
        Every API call but the health check needs a user's token. Turn off only on a
        single-user machine where nobody else can reach ``host``.
    tile_cache_mb:
        Memory for encoded tiles (slide and overlay), least recently used dropped first.
    jpeg_quality:
        Quality of the slide's Deep Zoom JPEG tiles (1-95).
    viewer_dir:
        The built viewer (``viewer/dist``) served at ``/``; default: the one beside the
        installed code.
    max_body_mb:
        Largest request body accepted, in MiB; larger ones get 413 before they are read or
        their token checked. The largest legitimate body is a correction mask of a
        8192² px patch as PNG (a few MiB).
    """

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    require_token: bool = True
    tile_cache_mb: int = Field(256, ge=0)
    jpeg_quality: int = Field(80, ge=1, le=95)
    viewer_dir: Path | None = None
    max_body_mb: int = Field(64, ge=1, le=1024)


class JobSettings(_Section):
    """Limits on the site service's background jobs (tile, predict, rank, train).

    Jobs run one at a time; these bound how much work users can line up and how big one
    job may be. A request beyond a limit is refused before anything is queued: 429 for the
    queue limits, 422 naming the parameter for the others.

    Attributes
    ----------
    max_queued_per_user:
        Jobs one user may have queued or running at once.
    max_queued:
        Jobs all users together may have queued or running at once.
    max_rank_patches:
        Patches a rank job may cut its slide into (the grid at its ``size`` and ``mpp``);
        a 100k × 80k px slide at 0.25 µm/px makes about 7 700 patches of 256 px at
        1 µm/px, 31 000 at 0.5 µm/px.
    max_rank_k:
        Patches a rank job may put in the worklist.
    max_train_epochs:
        Epochs a train job may run per fold.
    """

    max_queued_per_user: int = Field(4, ge=1, le=1000)
    max_queued: int = Field(16, ge=1, le=10_000)
    max_rank_patches: int = Field(50_000, ge=1)
    max_rank_k: int = Field(1000, ge=1)
    max_train_epochs: int = Field(100, ge=1)


class SiteSettings(_Section):
    """Everything a site node needs to know, validated on load.

    Attributes
    ----------
    site_id:
        Short name of this site (letters, digits, ``._-``); never a patient identifier.
    data_dir:
        Where the node keeps its database and rasters.
    database_url:
        SQLAlchemy URL; default a SQLite file ``pathloop.db`` inside ``data_dir``.
    slide_roots:
        Folders slides may be read from; any other path is refused.
    """

    site_id: str = "site"
    data_dir: Path = Path("pathloop-data")
    database_url: str | None = None
    slide_roots: tuple[Path, ...] = ()
    tiling: TilingSettings = TilingSettings()
    federation: FederationSettings = FederationSettings()
    inference: InferenceSettings = InferenceSettings()
    api: ApiSettings = ApiSettings()
    jobs: JobSettings = JobSettings()

    @field_validator("site_id")
    @classmethod
    def _check_site_id(cls, value: str) -> str:
        if not _SITE_ID.match(value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("slide_roots")
    @classmethod
    def _absolute_roots(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        return tuple(Path(root).expanduser().resolve() for root in value)

    @property
    def db_url(self) -> str:
        """The database URL actually used."""
        return self.database_url or f"sqlite:///{self.data_dir / 'pathloop.db'}"

    @property
    def raster_dir(self) -> Path:
        """Folder of the zarr rasters."""
        return self.data_dir / "rasters"

    @classmethod
    def from_mapping(cls, values: dict[str, Any], *, source: str = "settings") -> SiteSettings:
        """Validate a mapping (kebab-case keys) into settings, or raise :class:`ConfigError`."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(root)"
            raise ConfigError(f"{source}: {where}: {first['msg']}") from None

    @classmethod
    def from_file(cls, path: Path) -> SiteSettings:
        """Load settings from a TOML file; relative paths are taken from the file's folder."""
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
        base = path.resolve().parent
        if "data-dir" in values:
            values["data-dir"] = str(base / Path(values["data-dir"]).expanduser())
        federation = values.get("federation")
        if isinstance(federation, dict):
            for key in ("training-images", "training-masks", "held-out-images",
                        "held-out-masks"):
                if isinstance(federation.get(key), str):
                    federation[key] = str(base / Path(federation[key]).expanduser())
        api = values.get("api")
        if isinstance(api, dict) and isinstance(api.get("viewer-dir"), str):
            api["viewer-dir"] = str(base / Path(api["viewer-dir"]).expanduser())
        if "slide-roots" in values and isinstance(values["slide-roots"], list):
            values["slide-roots"] = [str(base / Path(root).expanduser())
                                     for root in values["slide-roots"]]
        return cls.from_mapping(values, source=str(path))
