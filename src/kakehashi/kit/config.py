"""Settings, read from ``KAKEHASHI_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide settings. Every field maps to ``KAKEHASHI_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="KAKEHASHI_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where the embedded database and files live.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Empty: embedded SQLite file in data_dir. "
        "Production: postgresql+psycopg://user@host/db",
    )
    default_region: str = Field(default="JP", description="Region used to read national phone numbers.")
    default_tenant: str = Field(default="center", description="Tenant code used before login exists.")
    host: str = "127.0.0.1"
    port: int = 8000
    sql_echo: bool = False

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'kakehashi.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (cached; tests build their own ``Settings``)."""
    return Settings()
