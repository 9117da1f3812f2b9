"""The web app's settings: one class, read from TORCHDOJO_* environment variables (and .env)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runner import LogFormat

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me"
# Docker's and Kubernetes' secrets: a file per setting, named like its variable in lowercase
# (/run/secrets/torchdojo_secret_key). Read only where the folder exists.
SECRETS_DIR = Path("/run/secrets")


class Settings(BaseSettings):
    """Every option of the web app. The runner has its own (RUNNER_*)."""

    model_config = SettingsConfigDict(
        env_prefix="TORCHDOJO_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None,
    )

    environment: Literal["development", "production", "test"] = Field(
        "development", description="production refuses placeholder secrets and sets Secure cookies"
    )
    secret_key: str = Field(
        DEV_SECRET, description="signs session cookies; long and random in production"
    )
    # The two options every host platform names its own way also answer to their plain names
    # (DATABASE_URL, RUNNER_URL); the TORCHDOJO_ one wins when both are set.
    database_url: str = Field(
        f"sqlite:///{ROOT / 'var' / 'torchdojo.sqlite3'}",
        validation_alias=AliasChoices("TORCHDOJO_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL: a SQLite file by default, postgresql+psycopg://… deployed "
        "(also read from `DATABASE_URL`)",
    )
    database_connections: int = Field(
        30,
        ge=2,
        le=1000,
        description="PostgreSQL connections one web process may hold; all replicas together "
        "stay under the server's max_connections",
    )
    content_dir: Path = Field(ROOT / "content", description="the folder of courses")
    content_check_file: Path = Field(
        ROOT / "var" / "content-check.json",
        description="where lessons' sandbox check results are recorded (by `torchdojo content "
        "check` and the dashboard's Validate button) and read by the instructor dashboard; the "
        "web app must be able to write to its folder",
    )
    runner_url: str | None = Field(
        None,
        validation_alias=AliasChoices("TORCHDOJO_RUNNER_URL", "RUNNER_URL", "runner_url"),
        description="runner service URL(s), comma-separated; unset: run an embedded sandbox pool "
        "in this process (also read from `RUNNER_URL`)",
    )
    runner_pool_size: int | None = Field(
        None, ge=1, description="embedded pool size (default: the runner's RUNNER_POOL_SIZE)"
    )
    max_code_kb: int = Field(
        64, ge=1, le=4096, description="largest code a learner may submit, KiB"
    )
    max_body_kb: int = Field(
        1024,
        ge=64,
        le=65536,
        description="largest request body, KiB: answered 413 before any of it is read (code "
        "at its limit, JSON-escaped, fits)",
    )
    runs_per_minute: int = Field(20, ge=1, description="runs one learner may start per minute")
    signin_failures_per_account: int = Field(
        10, ge=1, description="failed sign-ins for one account in 15 minutes before it waits"
    )
    signin_failures_per_address: int = Field(
        50, ge=1, description="failed sign-ins from one address in 15 minutes before it waits"
    )
    signups_per_address: int = Field(
        20, ge=1, description="sign-ups from one address in 15 minutes before it waits"
    )
    secure_cookies: bool | None = Field(
        None, description="Secure flag on the session cookie (default: on in production)"
    )
    keep_run_events_days: float = Field(
        30,
        gt=0,
        description="days a run's events (output, figures, curves) are kept; its row, "
        "its `done`, drafts, progress and accounts are kept for good",
    )
    run_events_budget_mb: float = Field(
        50,
        gt=0,
        description="stored run events per learner, MB: past it, the oldest runs' events go first",
    )
    purge_every_s: float = Field(
        3600,
        ge=0,
        description="how often the web app purges run events (0: only `torchdojo purge` does)",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="addresses (comma-separated, or *) whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed: the reverse proxy's, and nobody else's (the "
        "client address the sign-in throttle counts, https links)",
    )
    log_level: str = Field("info", description="log level: debug, info, warning, error")
    log_format: LogFormat = Field(
        "text", description="log lines: text for people, json (one object a line) for log stores"
    )
    metrics_token: str | None = Field(
        None,
        description="if set, GET /metrics needs `Authorization: Bearer <token>` (the web app is "
        "public; its metrics need not be)",
    )

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key == DEV_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "TORCHDOJO_SECRET_KEY must be a random value of 32+ characters in production "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return self

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.environment == "production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
