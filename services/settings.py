"""The one settings object, read from the environment and a `.env` file.

Built once at an entry point (CLI, worker, UI) and passed down; library code
never reads the environment itself.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"


class Settings(BaseSettings):
    """Everything that can be configured, with `VITRINE_` environment names."""

    model_config = SettingsConfigDict(
        env_prefix="VITRINE_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path("./vitrine-data"),
        description="Folder for the embedded store, model registry, reports and job state.",
    )
    qdrant_url: str | None = Field(
        default=None, description="Qdrant server URL; unset means the embedded store."
    )
    qdrant_api_key: SecretStr | None = Field(default=None, description="Qdrant API key.")
    qdrant_prefer_grpc: bool = Field(
        default=True, description="Talk gRPC to a Qdrant server when it offers it."
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        description="open_clip model name, `hf-hub:ORG/NAME`, or `local-dir:PATH`.",
    )
    pretrained: str = Field(
        default=DEFAULT_PRETRAINED,
        description="open_clip pretrained tag for a model name (ignored for hub/local models).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where models run: auto picks CUDA when present."
    )
    batch_size: int = Field(default=64, ge=1, description="Images per forward pass.")
    decode_workers: int = Field(
        default=0,
        ge=0,
        description=(
            "Parallel image decoders (threads for JPEG/PNG, processes for other formats); "
            "0 means one per CPU core."
        ),
    )
    max_image_pixels: int = Field(
        default=200_000_000, ge=1, description="Images with more pixels are refused."
    )
    max_image_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Image files larger than this are refused."
    )
    http_timeout: float = Field(default=20.0, gt=0, description="Seconds per image download.")

    store_backend: Literal["auto", "edge", "local"] = Field(
        default="auto",
        description=(
            "Embedded store engine when no server is set: `edge` (Qdrant Edge: indexes, "
            "on disk, shared by several processes), `local` (qdrant-client's local mode, "
            "one process, small collections), `auto`: edge, or local for a data folder "
            "that already holds a local-mode store."
        ),
    )

    @property
    def store_path(self) -> Path:
        """Folder of qdrant-client's local-mode store (`store_backend=local`)."""
        return self.data_dir / "qdrant"

    @property
    def edge_store_path(self) -> Path:
        """Folder of the Qdrant Edge store (`store_backend=edge`)."""
        return self.data_dir / "store"

    @property
    def embedded_backend(self) -> Literal["edge", "local"]:
        """The embedded engine to use; `auto` keeps an existing local-mode store working."""
        if self.store_backend != "auto":
            return self.store_backend
        local_in_use = (self.store_path / "collection").is_dir()
        return "local" if local_in_use and not self.edge_store_path.exists() else "edge"

    @property
    def registry_path(self) -> Path:
        """Folder of the model registry (one sub-folder per model version)."""
        return self.data_dir / "models"

    @property
    def collections_path(self) -> Path:
        """Folder of per-collection state: source, column mapping, history, reports."""
        return self.data_dir / "collections"

    def with_overrides(self, **overrides: object) -> "Settings":
        """A copy with CLI flags applied; `None` values mean "not given"."""
        given = {key: value for key, value in overrides.items() if value is not None}
        if not given:
            return self
        # Only what was set stays set, so "was VITRINE_MODEL given?" survives a copy.
        return type(self).model_validate(
            {**self.model_dump(include=self.model_fields_set), **given}
        )

    # -- Qdrant server and cluster: how collections are laid out, how faults are retried --
    qdrant_grpc_port: int = Field(
        default=6334, ge=1, le=65535, description="gRPC port of the Qdrant server."
    )
    qdrant_retries: int = Field(
        default=5,
        ge=1,
        description="Attempts per Qdrant call (with back-off) before a server counts as down.",
    )
    qdrant_shards: int | None = Field(
        default=None,
        ge=1,
        description="Shards per new collection on a server; unset: Qdrant picks (one per node).",
    )
    qdrant_replication: int = Field(
        default=1,
        ge=1,
        description="Copies of each shard on a Qdrant cluster (replication factor).",
    )
    qdrant_write_consistency: int = Field(
        default=1,
        ge=1,
        description="Replicas that must confirm a write; at most the replication factor.",
    )
    qdrant_on_disk: bool = Field(
        default=False,
        description="Keep original vectors and payloads on disk, not in RAM (large collections).",
    )
    qdrant_quantization: Literal["none", "int8"] = Field(
        default="none",
        description="Scalar quantization of new collections: int8 keeps a compact copy in RAM.",
    )

    @model_validator(mode="after")
    def _write_consistency_fits(self) -> "Settings":
        if self.qdrant_write_consistency > self.qdrant_replication:
            raise ValueError(
                f"VITRINE_QDRANT_WRITE_CONSISTENCY ({self.qdrant_write_consistency}) cannot exceed "
                f"VITRINE_QDRANT_REPLICATION ({self.qdrant_replication}): a write cannot wait for "
                "more copies than there are."
            )
        return self
