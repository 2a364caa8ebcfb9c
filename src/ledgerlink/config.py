"""Settings: one root object with nested groups, read from ``LEDGERLINK_*`` environment variables.

Nested groups use ``__``: ``LEDGERLINK_SYNC__OVERLAP_DAYS=14``, ``LEDGERLINK_FORTNOX__CLIENT_ID=...``,
``LEDGERLINK_BANKS__NORDEA__BASE_URL=...``. Every setting is listed with its default in ``.env.example``.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-change-me-0123456789abcdef"
DEV_ENCRYPTION_KEY = "ZGV2LWtleS1kby1ub3QtdXNlLWluLXByb2R1Y3Rpb24="  # base64 of a 32-byte dev key


def split_commas(value: object) -> object:
    """A comma-separated setting (``a,b``) as a list of its non-empty items."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class AuthSettings(BaseModel):
    """Caller JWTs: HS256 with a shared secret (dev) or RS256 from a JWKS URL (production)."""

    jwt_secret: SecretStr | None = SecretStr(DEV_JWT_SECRET)
    jwks_url: str | None = None
    jwks_cache_seconds: int = 300
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 30
    # The longest a token may still be valid when presented (exp - now): a token signed to live for
    # ever (exp = 1e308) is refused. Lower it to your identity provider's token lifetime.
    max_token_lifetime_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    # A bearer token longer than this, or whose header or claims nest deeper than this, is refused
    # before it is decoded (a JSON bomb in a signed token must not reach the JSON parser's recursion).
    max_token_bytes: int = Field(default=8192, gt=0)
    max_token_nesting: int = Field(default=16, gt=0)


class SecuritySettings(BaseModel):
    """Encryption of secrets at rest (AES-GCM).

    ``encryption_keys`` is a comma-separated list of ``key_id:base64key`` (32-byte keys); the first
    encrypts, all decrypt, so keys can be rotated by putting the new key first.
    """

    encryption_keys: SecretStr = SecretStr(f"dev:{DEV_ENCRYPTION_KEY}")


class SyncSettings(BaseModel):
    """The nightly schedule and the sync window."""

    overlap_days: int = 10
    night_window_start: dt.time = dt.time(1, 0)
    night_window_end: dt.time = dt.time(5, 0)
    per_bank_concurrency: int = 8
    unattended_reads_per_day: int = 4
    max_attempts: int = 5
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    #: ``consent_expiring`` reminders this many days before a consent ends, once per threshold and consent
    consent_reminder_days: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [14, 3])
    lock_ttl_seconds: int = 900
    #: a statement row matches a held row of the same amount and text up to this many days apart
    statement_match_days: int = 3

    @field_validator("consent_reminder_days", mode="before")
    @classmethod
    def _split_days(cls, value: object) -> object:
        return split_commas(value)

    @field_validator("consent_reminder_days")
    @classmethod
    def _positive_days(cls, value: list[int]) -> list[int]:
        if any(days < 1 for days in value):
            raise ValueError("consent reminder days must be 1 or more")
        return sorted(set(value), reverse=True)

    @property
    def consent_reminder_horizon(self) -> dt.timedelta:
        """How far ahead consent expiry is watched: the largest reminder threshold (none: nothing)."""
        return dt.timedelta(days=max(self.consent_reminder_days, default=0))


class BankEndpointSettings(BaseModel):
    """One bank's API: base URL and TPP credentials. Unset fields fall back to the catalogue default."""

    base_url: str | None = None
    auth_base_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    app_id: str | None = None
    timeout_seconds: float = 30.0
    #: eIDAS QWAC for mutual TLS (PEM files) and an optional CA bundle that replaces the default one.
    client_cert_file: str | None = None
    client_key_file: str | None = None
    ca_bundle_file: str | None = None
    #: eIDAS QSealC for signed requests (PEM private key and certificate).
    signing_key_file: str | None = None
    signing_cert_file: str | None = None


class FortnoxSettings(BaseModel):
    """Fortnox API v3 and its OAuth2 server."""

    api_base_url: str = "https://api.fortnox.se"
    auth_base_url: str = "https://apps.fortnox.se/oauth-v1"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: str = "companyinformation bookkeeping invoice supplierinvoice settings"
    requests_per_window: int = 25
    window_seconds: float = 5.0
    rate_headroom_percent: int = Field(default=20, ge=0, le=90)
    """Share of Fortnox's limit left unused (20: at most 20 requests per 5 s), for delay and clock drift."""
    validity_days: int = 30
    expiry_warning_days: int = 7
    timeout_seconds: float = 30.0


class WebhookSettings(BaseModel):
    """Outgoing webhooks to internal services."""

    allow_private_targets: bool = False
    timeout_seconds: float = 10.0
    max_attempts: int = 8


class LimitSettings(BaseModel):
    """Request size limits (bytes)."""

    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 200 * 1_048_576
    # SIE uploads and imports: what a file may hold (422 naming the line beyond); bounds their memory
    sie_max_accounts: int = 50_000
    sie_max_records: int = 500_000
    sie_max_rows_per_voucher: int = 100_000
    sie_max_field_length: int = 1_000


class MatchingSettings(BaseModel):
    """Invoice matching."""

    date_window_days: int = Field(default=10, ge=0, le=90)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEDGERLINK_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["development", "testing", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./var/ledgerlink.db"
    # PostgreSQL connections each API process keeps open (no overflow: a request never pays a connect;
    # more concurrent requests than this wait for one). Size it so that API processes × this + workers
    # stay under PostgreSQL's max_connections. Not used with SQLite.
    database_pool_size: int = Field(default=16, ge=1, le=500)
    # SQLite only (`make run`): it has one writer, so a write waits this long for another to finish before
    # its request is answered 503 `database_busy` (SQLite's own default, 5 s, is shorter than a 100 MB
    # SIE upload's store on a busy disk).
    database_sqlite_busy_timeout_seconds: float = Field(default=30, gt=0, le=600)
    redis_url: str | None = None
    queue_name: str = "arq:queue"
    sandbox: bool = False
    public_base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    # Idle keep-alive of `ledgerlink api`; longer than any proxy's idle timeout (ALB: 60 s), so the server
    # never closes a connection the client is about to reuse (the client sees a bare disconnect then).
    http_keep_alive_seconds: int = Field(default=75, gt=0)
    # An Idempotency-Key is remembered this long; after that the same key is a new request.
    idempotency_ttl_hours: float = Field(default=24, gt=0)
    log_json: bool = True
    bank_import_trial_until: dt.date | None = None
    allowed_redirect_uris: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000/callback", "http://127.0.0.1:8000/sandbox/callback"]
    )

    # The proxies whose X-Forwarded-For is believed (CIDRs or addresses, comma-separated): the user's
    # address is the socket peer unless that peer is one of these (ledgerlink.client_address). Empty:
    # no proxy is trusted and a forwarded header is ignored.
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)

    auth: AuthSettings = AuthSettings()
    security: SecuritySettings = SecuritySettings()
    sync: SyncSettings = SyncSettings()
    banks: dict[str, BankEndpointSettings] = Field(default_factory=dict)
    fortnox: FortnoxSettings = FortnoxSettings()
    webhooks: WebhookSettings = WebhookSettings()
    limits: LimitSettings = LimitSettings()
    matching: MatchingSettings = MatchingSettings()

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Settings:
        """Production refuses to start with the development secrets, which are public (they are in the
        source): the HS256 JWT secret (when it is what verifies callers, i.e. no JWKS URL) and the
        AES-GCM key of secrets at rest (as the current key or an old one)."""
        if self.env != "production":
            return self
        refused = []
        secret = self.auth.jwt_secret
        if self.auth.jwks_url is None and secret is not None and secret.get_secret_value() == DEV_JWT_SECRET:
            refused.append(
                "LEDGERLINK_AUTH__JWT_SECRET is the development secret (set your own, or "
                "LEDGERLINK_AUTH__JWKS_URL)"
            )
        if DEV_ENCRYPTION_KEY in self.security.encryption_keys.get_secret_value():
            refused.append(
                "LEDGERLINK_SECURITY__ENCRYPTION_KEYS holds the development key (set your own keys)"
            )
        if refused:
            raise ValueError("refusing to start with LEDGERLINK_ENV=production: " + "; ".join(refused))
        return self

    @field_validator("allowed_redirect_uris", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        return split_commas(value)

    def bank(self, bank_id: str) -> BankEndpointSettings:
        return self.banks.get(bank_id) or BankEndpointSettings()

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


Settings.model_rebuild()


@lru_cache
def get_settings() -> Settings:
    return Settings()
