"""Settings from the environment (prefix ``CRMMAIL_``), built once in the CLI and passed down."""

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./crmmail.db"
DEFAULT_MAX_MESSAGE_SIZE = 25 * 1024 * 1024


class Settings(BaseSettings):
    """Every knob of crmmail; flags on the command line override these."""

    model_config = SettingsConfigDict(env_prefix="CRMMAIL_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    smart_domains: Annotated[tuple[str, ...], NoDecode] = ("mail.localhost",)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_hostname: str = "crmmail.localhost"
    max_message_size: int = Field(default=DEFAULT_MAX_MESSAGE_SIZE, gt=0)
    max_recipients: int = Field(default=100, gt=0)
    smtp_timeout: float = Field(default=300.0, gt=0)
    shutdown_grace: float = Field(default=30.0, ge=0)
    storage_timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, gt=0)
    retry_base_delay: float = Field(default=30.0, ge=0)
    worker_idle_poll: float = Field(default=1.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)

    @field_validator("smart_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.replace(" ", ",").split(",") if part]
        if isinstance(value, list | tuple):
            domains = tuple(str(part).strip().lower().rstrip(".") for part in value)
            if not domains:
                raise ValueError("at least one smart domain is needed")
            return domains
        return value
