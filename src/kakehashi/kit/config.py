"""Settings, read from ``KAKEHASHI_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
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
    default_tenant: str = Field(
        default="center", description="The center's own tenant; center-wide admins act in it unless they pick one."
    )
    session_idle_minutes: int = Field(default=60, description="A web session ends after this long without use.")
    session_max_hours: int = Field(default=12, description="A web session ends this long after login (a shift).")
    cookie_secure: bool = Field(
        default=False, description="Send cookies only over HTTPS (turn on behind TLS; off for http://127.0.0.1)."
    )
    login_max_failures: int = Field(
        default=5, description="Failed logins in a row for a name from one address before the name is locked there."
    )
    lockout_seconds: int = Field(default=30, description="First lockout; doubles with each further failure.")
    lockout_max_seconds: int = Field(default=900, description="Longest lockout.")
    login_name_max_failures: int = Field(
        default=20,
        ge=1,
        description="Failed logins for one name from every address before the name is locked (30 s doubling), "
        "except at addresses its user logged in from (login_max_failures locks one name at one address).",
    )
    login_attempts_per_address_minute: float = Field(
        default=30,
        ge=0,
        description="Login attempts a source address may make a minute (a burst of as many, then evenly); a "
        "success gives its attempt back. 0: no limit. Counted in this process's memory.",
    )
    login_attempts_per_name_minute: float = Field(
        default=10,
        ge=0,
        description="Login attempts for one user name a minute, from addresses its user never logged in from; "
        "a success gives its attempt back. 0: no limit. Counted in this process's memory.",
    )
    login_hash_slots: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Password hashes (argon2id, 64 MiB each) computed at once; a login that finds them taken for "
        "1 s gets 503 with Retry-After. 0: half the CPU cores.",
    )
    telephony_driver: str = Field(
        default="sim",
        pattern="^(sim|sip|none)$",
        description="The phone system driver: sim (embedded simulator) or sip (Kamailio + rtpengine + the "
        "CTI's SIP endpoint, sip_engine; docs/telephony.md).",
    )
    sip_proxy: str = Field(
        default="127.0.0.1:5060",
        pattern=r"^[A-Za-z0-9.\-]+:\d{1,5}$",
        description="Kamailio's host:port: the CTI's calls go out through it, and it sends calls for the "
        "center's numbers to the media worker.",
    )
    trunk_lines: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Calls the phone line (trunk) carries at once, inbound and outbound together: predictive "
        "dialing places no call past it (each campaign's own cap is its max_in_flight). Unset: no limit.",
    )
    sip_no_answer_s: float = Field(
        default=30.0, ge=5, le=300, description="An outbound call nobody answers within this is a no-answer."
    )
    sip_media_port: int = Field(
        default=5080, ge=1024, le=65535, description="The media worker's SIP port on 127.0.0.1 (Kamailio's `CTI`)."
    )
    sip_workers: int = Field(
        default=4,
        ge=1,
        le=500,
        description="Media worker processes (sip_calls_per_worker concurrent calls each): worker i listens on "
        "sip_media_port + 2*i, the addresses of Kamailio's dispatcher set 1.",
    )
    sip_calls_per_worker: int = Field(
        default=2,
        ge=1,
        le=2,
        description="Customer calls a media worker takes: 2 fills its four dialogs with two calls and their agents; "
        "1 keeps room on every call for an attended transfer's consultation and a listening supervisor "
        "(docs/telephony.md, Capacity).",
    )
    sip_engine: str = Field(
        default="rtpengine",
        pattern="^(pjsip|rtpengine)$",
        description="Who carries the calls' audio: pjsip (the CTI's media workers, ADR 0013) or rtpengine (the "
        "CTI only signals; rtpengine plays prompts, records and relays, ADR 0024: hundreds of calls per core). "
        "rtpengine needs sip_rtpengine_ng, sip_recording_spool and sip_dtmf_port to match rtpengine's "
        "listen-ng, recording-dir (recording-method=pcap) and dtmf-log-dest.",
    )
    sip_rtpengine_ng: str = Field(
        default="127.0.0.1:2223",
        pattern=r"^[A-Za-z0-9.\-]+:\d{1,5}$",
        description="sip_engine=rtpengine: rtpengine's ng control address (its listen-ng).",
    )
    sip_recording_spool: Path | None = Field(
        default=None,
        description="sip_engine=rtpengine: rtpengine's recording-dir (its pcaps become WAVs under data_dir). "
        "Unset: data_dir/rtp-recordings.",
    )
    sip_dtmf_port: int = Field(
        default=22230,
        ge=1024,
        le=65535,
        description="sip_engine=rtpengine: the UDP port on 127.0.0.1 rtpengine's dtmf-log-dest sends keys to.",
    )
    softphone_ws_url: str | None = Field(
        default=None,
        pattern=r"^wss?://[A-Za-z0-9.\-\[\]:]+(/[^\s]*)?$",
        description="Browser softphone: Kamailio's SIP-over-WebSocket URL (wss://sip.example:8443 in production, "
        "ws:// only on loopback). Unset: no browser softphone (docs/telephony.md).",
    )
    softphone_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Browser softphone: the secret shared with Kamailio's auth_ephemeral module; the app signs "
        "short-lived SIP credentials with it. Never commit it.",
    )
    softphone_domain: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.\-]+$",
        description="Browser softphone: the SIP domain of agents' URIs (sip:<agent>@<domain>). "
        "Unset: the host of sip_proxy.",
    )
    softphone_credential_ttl_s: int = Field(
        default=3600,
        ge=60,
        le=86_400,
        description="Browser softphone: how long issued SIP credentials stay valid (the page renews them before).",
    )
    softphone_turn_urls: list[str] = Field(
        default_factory=list,
        description="Browser softphone: TURN servers (turns:turn.example:5349?transport=tcp) for browsers that "
        "cannot reach rtpengine over UDP; coturn with use-auth-secret and the same secret accepts the same "
        "ephemeral credentials.",
    )
    demo_traffic_per_hour: float = Field(
        default=0,
        ge=0,
        le=36_000,
        description="Simulated inbound calls per hour to the demo numbers, with the sim driver (0: none). "
        "`kakehashi demo` uses 120 unless this is set.",
    )
    import_max_rows: int = Field(
        default=1_048_576,
        ge=1,
        description="Import: most rows a spreadsheet (XLSX…) may have; checked before it is loaded "
        "(Excel's own limit).",
    )
    import_max_cells: int = Field(
        default=5_000_000,
        ge=1,
        description="Import: most cells a spreadsheet may have; checked before it is loaded (the reader holds a "
        "sheet in memory, ~50 bytes a cell: 5M cells ≈ 250 MB). Larger lists import as CSV.",
    )
    import_max_unpacked_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        description="Import: most bytes a spreadsheet may unpack to (its zip members); a small file unpacking to "
        "gigabytes (a zip bomb) is refused before it is loaded.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body a route takes unless it declares more (kit/body.py, app.BODY_LIMITS); "
        "a larger one is refused with 413 before it is read.",
    )
    api_docs: bool = Field(
        default=True,
        description="Serve the API's documentation (/docs: Swagger UI from local files, /openapi.json) to "
        "signed-in users; 0 turns both off.",
    )
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
