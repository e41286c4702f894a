"""Settings from the environment (prefix ``CRMMAIL_``), built once in the CLI and passed down."""

from pathlib import Path
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
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(default=None, ge=0, le=65535)  # health and metrics; off if unset
    max_message_size: int = Field(default=DEFAULT_MAX_MESSAGE_SIZE, gt=0)
    max_recipients: int = Field(default=100, gt=0)
    max_connections: int = Field(default=500, gt=0)  # SMTP sessions at once, in all
    max_connections_per_ip: int = Field(default=20, gt=0)  # SMTP sessions at once, per client IP
    smtp_timeout: float = Field(default=300.0, gt=0)
    shutdown_grace: float = Field(default=30.0, ge=0)
    storage_timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, gt=0)
    retry_base_delay: float = Field(default=30.0, ge=0)
    worker_idle_poll: float = Field(default=1.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)
    secret_key: str | None = None
    secret_key_file: Path | None = None
    allow_private_mail_hosts: bool = False
    tls_ca_file: Path | None = None
    dns_servers: Annotated[tuple[str, ...], NoDecode] = ()
    autoconfig_urls: Annotated[tuple[str, ...], NoDecode] = (
        "https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={email}",
        "https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={email}",
    )
    mail_timeout: float = Field(default=30.0, gt=0)
    sent_copy_wait: float = Field(default=5.0, ge=0)
    import_days: int = Field(default=30, gt=0)
    import_limit: int = Field(default=500, gt=0)
    import_batch: int = Field(default=50, gt=0)
    sync_interval_min: float = Field(default=900.0, gt=0)
    sync_interval_max: float = Field(default=1800.0, gt=0)

    @field_validator("dns_servers", "autoconfig_urls", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

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
