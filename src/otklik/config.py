"""Settings from OTKLIK_* environment variables, optionally layered over a TOML file.

The file is named by OTKLIK_CONFIG_FILE; environment variables win over it.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_JUNK = [
    "79777777777",
    "70000000000",
    "79999999999",
    "71111111111",
    "79000000000",
    "test@test.com",
    "test@example.com",
    "noemail@noemail.com",
    "no@email.com",
    "none@none.com",
    "email@email.com",
    "a@a.a",
    "undefined",
    "null",
    "none",
    "0",
    "anonymous",
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTKLIK_", extra="ignore")

    database_url: str = "sqlite:///./var/otklik.db"
    # FULL fsyncs every commit: an acknowledged event survives a power cut, not only kill -9.
    # Group commit amortises the cost; NORMAL is faster and still survives a process crash.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    secret_key: SecretStr = SecretStr("dev-only-change-me")

    default_phone_region: str = "RU"
    identity_unique_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["user_id"]
    )
    junk_identifiers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_JUNK)
    )

    ingest_max_event_bytes: int = 32 * 1024
    ingest_max_batch_bytes: int = 4 * 1024 * 1024
    ingest_max_batch_events: int = 2500
    # Above this many accepted-but-unwritten events the API answers 429 with Retry-After.
    ingest_max_queued_events: int = 100_000
    ingest_write_batch: int = 5000
    # Events not yet resolved into profiles; past this the API also pushes back with 429.
    ingest_max_backlog: int = 2_000_000
    # Acknowledge from a local fsynced journal that a mover copies into the event table
    # (ingest/spool.py); off, each 200 waits for the store's own commit.
    ingest_spool: bool = True
    # Empty: `<database file>.spool` beside a SQLite store, ./var/ingest-spool otherwise.
    ingest_spool_dir: str = ""

    import_max_bytes: int = 64 * 1024 * 1024

    # Mark console cookies Secure even when the app sees plain HTTP (behind a TLS proxy).
    console_secure_cookies: bool = False

    embedded_worker: bool = True
    # Send messages inside the web process (embedded mode); off when `otklik worker`s do it.
    embedded_delivery: bool = True
    # Larger batches dirty each index page once for more events (less WAL per event):
    # 2,000 -> 8,000 took resolution during ingest from ~11k to ~13k events/s on SQLite.
    resolver_batch: int = 8000
    # The batch of a resolver that shares its process with the API (`otklik serve`) while
    # tracking calls are coming in. One interpreter runs both, and preparing a batch is
    # Python work that the request path waits behind: at 10k events/s the loop stalled up to
    # 45 ms inside 5,000-8,000-event batches. 2,000 took the p99 acknowledgement at half the
    # peak from 47-71 ms to 28-31 ms (SQLite) and 60 to 37 ms (PostgreSQL); idle, the
    # resolver goes back to `resolver_batch` to catch up.
    resolver_batch_under_ingest: int = 2000
    # Changed profiles (or due times) the segment loop re-evaluates per transaction.
    segment_batch: int = 500
    # Customer models (RFM, BG/NBD, Gamma-Gamma) are refitted when the latest fit is older.
    insight_refit_hours: int = 24
    queue_backend: Literal["sqlite", "redis", "memory"] = "sqlite"
    queue_path: str = "./var/queue.db"
    redis_url: str = "redis://127.0.0.1:6379/0"

    # Where people's links (tracking, unsubscribe, preferences) point; a workspace may override.
    public_url: str = "http://127.0.0.1:8000"
    # Sending: how long a claimed message may stay in flight before another worker takes it
    # back (the worker died), and the huey consumer's thread count in embedded mode.
    delivery_lease_seconds: int = 120
    delivery_workers: int = 2
    delivery_batch: int = 100

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])

    @field_validator("identity_unique_types", "junk_identifiers", "cors_origins", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        # Environment variables carry lists as "a,b,c" as well as JSON.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("OTKLIK_CONFIG_FILE")
        if path and Path(path).is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
