"""Settings from the environment (prefix ``CRMMAIL_``), built once in the CLI and passed down."""

from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./crmmail.db"
DEFAULT_MAX_MESSAGE_SIZE = 25 * 1024 * 1024


class Settings(BaseSettings):
    """Every knob of crmmail; flags on the command line override these."""

    model_config = SettingsConfigDict(env_prefix="CRMMAIL_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for production
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
    data_timeout: float = Field(default=600.0, gt=0)  # the whole DATA phase of one message
    tls_cert_file: Path | None = None  # with tls_key_file: STARTTLS is offered (never required)
    tls_key_file: Path | None = None
    # Load balancers whose connections start with a PROXY protocol header (v2 or v1); empty: off.
    proxy_protocol_networks: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()
    # Sender authentication (SPF, DKIM, DMARC, in the worker) skips clients in these networks:
    # local submission, as OpenDMARC's IgnoreHosts. DNS goes to dns_servers (or the system's).
    auth_ignore_networks: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = (
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
    )
    # The loop guard: contacts and leads that mail from one From address may create per hour.
    max_creations_per_sender_hour: int = Field(default=20, ge=0)
    shutdown_grace: float = Field(default=30.0, ge=0)
    storage_timeout: float = Field(default=30.0, gt=0)
    # How long RCPT trusts a slug -> account answer (crmmail.smtpd.account_ids); 0: always ask.
    recipient_cache_ttl: float = Field(default=5.0, ge=0)
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

    @field_validator("tls_cert_file", "tls_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("proxy_protocol_networks", "auth_ignore_networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            networks: list[IPv4Network | IPv6Network] = []
            for part in value:
                try:
                    networks.append(ip_network(str(part), strict=False))
                except ValueError:
                    raise ValueError(f"not a network (CIDR): {part!r}") from None
            return tuple(networks)
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
