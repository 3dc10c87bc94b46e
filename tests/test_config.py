"""The shipped config.yaml and the typed schema that validates it (gateway/config.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from gateway.config import Config, ConfigError, load_config
from gateway.text.names import name_entries

SHIPPED = Path(__file__).resolve().parent.parent / "config.yaml"

HP_DISTRICTS = {
    "Bilaspur",
    "Chamba",
    "Hamirpur",
    "Kangra",
    "Kinnaur",
    "Kullu",
    "Lahaul and Spiti",
    "Mandi",
    "Shimla",
    "Sirmaur",
    "Solan",
    "Una",
}

# A Hindi USSD screen holds 80 characters in all, so menu entries must stay short.
MAX_HI = 16
MAX_EN = 22


def shipped_raw() -> dict[str, Any]:
    """A fresh copy of the shipped YAML as plain data, for a test to alter."""
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# The languages the shipped configuration offers, in menu order.
LANGUAGES = [
    *("hi", "en_IN", "hi_Latn", "bn", "mr", "gu", "pa"),
    *("te", "ta", "kn", "ml", "or", "as", "ur", "ne", "mai", "sa"),
    *("brx", "doi", "kok", "mni", "sat", "sat_Latn"),
    *("ks", "ks_Deva", "sd", "sd_Deva"),
]


def load_altered(
    tmp_path: Path, alter: Callable[[dict[str, Any]], object], environ: dict[str, str] | None = None
) -> Config:
    raw = shipped_raw()
    alter(raw)
    return load_config(write(tmp_path, raw), environ=environ or {})


def all_names(config: Config) -> Iterator[tuple[str, dict[str, str]]]:
    """Every localized name in the configuration, with where it sits."""
    yield "service.name", config.service.name
    for i, level in enumerate(config.levels):
        yield f"levels[{i}].name", level.name
    for i, dept in enumerate(config.departments):
        yield f"departments[{i}].name", dept.name
        for j, issue in enumerate(dept.issues):
            yield f"departments[{i}].issues[{j}].name", issue.name
    for i, dist in enumerate(config.districts):
        yield f"districts[{i}].name", dist.name
        for j, tehsil in enumerate(dist.tehsils):
            yield f"districts[{i}].tehsils[{j}].name", tehsil.name
            for k, block in enumerate(tehsil.blocks):
                yield f"districts[{i}].tehsils[{j}].blocks[{k}].name", block.name


@pytest.fixture(scope="module")
def shipped() -> Config:
    return load_config(SHIPPED, environ={})


# --- the shipped file -------------------------------------------------------------------


def test_shipped_config_loads(shipped: Config) -> None:
    assert shipped.service.service_code == "*1100#"
    assert shipped.service.default_language == "hi"
    assert shipped.service.timezone == "Asia/Kolkata"
    assert [lang.code for lang in shipped.languages] == LANGUAGES
    assert shipped.base_dir == SHIPPED.parent


def test_shipped_settings_are_the_schema_defaults(shipped: Config) -> None:
    """The file doubles as the reference: every setting it spells out is the default."""
    for section in ("server", "database", "redis", "worker", "sms", "ussd", "paths"):
        value = getattr(shipped, section)
        assert value == type(value)(), section
    raw = shipped_raw()
    for section in ("server", "database", "redis", "worker", "ussd"):
        assert set(raw[section]) == set(type(getattr(shipped, section)).model_fields), section
    assert set(raw["sms"]["africastalking"]) == set(type(shipped.sms.africastalking).model_fields)


def test_shipped_levels_follow_the_1100_ladder(shipped: Config) -> None:
    assert [(lv.code, lv.days) for lv in shipped.levels] == [
        ("block", 7),
        ("tehsil", 7),
        ("district", 14),
        ("state", 14),
    ]


def test_shipped_has_twelve_districts(shipped: Config) -> None:
    assert len(shipped.districts) == 12
    assert {d.name["en_IN"] for d in shipped.districts} == HP_DISTRICTS
    for dist in shipped.districts:
        assert 2 <= len(dist.tehsils) <= 4, dist.code
        for tehsil in dist.tehsils:
            assert 1 <= len(tehsil.blocks) <= 3, (dist.code, tehsil.code)
        tehsil_codes = [t.code for t in dist.tehsils]
        assert len(tehsil_codes) == len(set(tehsil_codes)), dist.code
        block_codes = [b.code for b in dist.blocks]
        assert len(block_codes) == len(set(block_codes)), dist.code


def test_shipped_has_nine_departments_with_three_to_six_issues(shipped: Config) -> None:
    assert len(shipped.departments) == 9
    for dept in shipped.departments:
        assert 3 <= len(dept.issues) <= 6, dept.code


def test_every_name_has_every_language(shipped: Config) -> None:
    for where, name in all_names(shipped):
        assert set(name) == set(LANGUAGES), where
        assert all(text.strip() for text in name.values()), where


def test_menu_names_fit_a_ussd_screen(shipped: Config) -> None:
    too_long = [
        (where, name)
        for where, name in all_names(shipped)
        if where != "service.name" and (len(name["hi"]) > MAX_HI or len(name["en_IN"]) > MAX_EN)
    ]
    assert too_long == []


def test_hindi_names_are_in_devanagari(shipped: Config) -> None:
    for where, name in all_names(shipped):
        assert any("\u0900" <= ch <= "\u097f" for ch in name["hi"]), where
        assert not any("a" <= ch.lower() <= "z" for ch in name["hi"]), where


# --- unknown keys -----------------------------------------------------------------------


def test_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, lambda raw: raw.update(servr={"port": 8080}))
    assert "servr: unknown key" in str(excinfo.value)


def test_unknown_nested_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, lambda raw: raw["departments"][0].update(colour="red"))
    assert "departments[0].colour: unknown key" in str(excinfo.value)


def test_unknown_key_deep_in_districts_is_refused(tmp_path: Path) -> None:
    def alter(raw: dict[str, Any]) -> None:
        raw["districts"][3]["tehsils"][1]["blocks"][0]["pincode"] = "176001"

    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, alter)
    assert "districts[3].tehsils[1].blocks[0].pincode: unknown key" in str(excinfo.value)


# --- wrong values -----------------------------------------------------------------------


def test_port_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(SHIPPED, environ={"PORT": "abc"})
    assert "PORT" in str(excinfo.value)
    assert "abc" in str(excinfo.value)


def test_port_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(SHIPPED, environ={"PORT": "70000"})
    assert "server.port" in str(excinfo.value)


def test_a_send_lease_shorter_than_twice_the_provider_timeout_is_refused(
    tmp_path: Path,
) -> None:
    def alter(raw: dict[str, Any]) -> None:
        raw["worker"]["send_lease_seconds"] = 15
        raw["sms"]["provider"] = "africastalking"  # the provider that sends: its timeout
        raw["sms"]["africastalking"].update(timeout_seconds=8, api_key="k")

    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, alter)
    assert "worker.send_lease_seconds: 15 is less than twice" in str(excinfo.value)
    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, lambda raw: raw["worker"].update(send_lease_seconds=5))
    assert "worker.send_lease_seconds" in str(excinfo.value)

    def short(raw: dict[str, Any]) -> None:
        raw["worker"]["send_lease_seconds"] = 10
        raw["sms"]["africastalking"]["timeout_seconds"] = 5

    assert load_altered(tmp_path, short).worker.send_lease_seconds == 10


def test_unknown_sms_provider_in_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, lambda raw: raw["sms"].update(provider="nokia"))
    assert "sms.provider" in str(excinfo.value)


def test_unknown_sms_provider_from_environment_is_refused() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(SHIPPED, environ={"SMS_PROVIDER": "nokia"})
    assert "sms.provider" in str(excinfo.value)


def test_bad_code_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, lambda raw: raw["departments"][1].update(code="Jal-Shakti"))
    assert "departments[1].code" in str(excinfo.value)


def test_duplicate_block_in_a_district_is_refused(tmp_path: Path) -> None:
    def alter(raw: dict[str, Any]) -> None:
        tehsils = raw["districts"][1]["tehsils"]
        tehsils[1]["blocks"][0]["code"] = tehsils[0]["blocks"][0]["code"]

    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, alter)
    assert "districts: block: code" in str(excinfo.value)
    assert "appears twice" in str(excinfo.value)


def test_default_language_must_be_configured(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, lambda raw: raw["service"].update(default_language="sw"))
    assert "service.default_language" in str(excinfo.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml", environ={})


# --- names in every language ------------------------------------------------------------


@pytest.mark.parametrize(
    ("locate", "where"),
    [
        (lambda raw: raw["service"]["name"], "service.name"),
        (lambda raw: raw["levels"][2]["name"], "levels[2].name"),
        (lambda raw: raw["departments"][0]["name"], "departments[0].name"),
        (lambda raw: raw["departments"][4]["issues"][2]["name"], "departments[4].issues[2].name"),
        (lambda raw: raw["districts"][8]["name"], "districts[8].name"),
        (
            lambda raw: raw["districts"][8]["tehsils"][1]["blocks"][0]["name"],
            "districts[8].tehsils[1].blocks[0].name",
        ),
    ],
)
def test_name_without_hindi_and_english_is_refused(
    tmp_path: Path, locate: Callable[[dict[str, Any]], dict[str, str]], where: str
) -> None:
    def alter(raw: dict[str, Any]) -> None:
        locate(raw).pop("hi")
        locate(raw).pop("en_IN")

    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, alter)
    message = str(excinfo.value)
    assert f"{where}: no text for language(s) hi, en_IN, " in message  # and every other one


@pytest.mark.parametrize(
    ("locate", "where"),
    [
        (lambda c: c.departments[0].name, "departments[0].name"),
        (lambda c: c.districts[8].tehsils[1].blocks[0].name, "districts[8]...blocks[0].name"),
    ],
)
def test_name_without_hindi_comes_from_the_catalog_or_is_english(
    tmp_path: Path, locate: Callable[[Any], dict[str, str]], where: str
) -> None:
    shipped = locate(load_config(SHIPPED, environ={}))
    english = shipped["en_IN"]
    # No catalog (locales/ under tmp_path is empty): the English name.
    config = load_altered(tmp_path, lambda raw: [n.pop("hi", None) for _, n in name_entries(raw)])
    assert locate(config)["hi"] == english, where
    # A Hindi catalog that translates the name (msgctxt: what it names).
    catalog = Catalog(locale="hi")
    context = "department" if "departments" in where else "place"
    catalog.add(english, string="अनुवाद", context=context)
    po = tmp_path / "locales" / "hi" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as f:
        write_po(f, catalog)
    config = load_altered(tmp_path, lambda raw: [n.pop("hi", None) for _, n in name_entries(raw)])
    assert locate(config)["hi"] == "अनुवाद"
    assert config.service.name["hi"] == config.service.name["en_IN"]
    # A name config.yaml writes out wins over the catalog.
    assert locate(load_altered(tmp_path, lambda raw: None))["hi"] == shipped["hi"]


def test_name_in_an_unconfigured_language_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, lambda raw: raw["departments"][0]["name"].update(sw="Mapato"))
    assert "departments[0].name: language(s) sw are not configured" in str(excinfo.value)


# --- environment overrides --------------------------------------------------------------


def test_environment_overrides_win_over_the_file() -> None:
    config = load_config(
        SHIPPED,
        environ={
            "DATABASE_URL": "postgresql://sampark:secret@db.internal:5432/sampark",
            "REDIS_URL": "redis://cache.internal:6379/0",
            "PORT": "9090",
            "HOST": "0.0.0.0",
            "SMS_PROVIDER": "africastalking",
            "AT_USERNAME": "hpgrievance",
            "AT_API_KEY": "atsk_test_key",
            "AT_SENDER_ID": "HPCMHL",
            "AT_BASE_URL": "https://at.example.test/",
        },
    )
    assert config.database.url == "postgresql://sampark:secret@db.internal:5432/sampark"
    assert config.redis.url == "redis://cache.internal:6379/0"
    assert config.server.port == 9090
    assert config.server.host == "0.0.0.0"
    assert config.sms.provider == "africastalking"
    at = config.sms.africastalking
    assert at.username == "hpgrievance"
    assert at.api_key == "atsk_test_key"
    assert at.sender_id == "HPCMHL"
    assert at.base_url == "https://at.example.test/"
    assert at.resolved_base_url == "https://at.example.test"
    # What the environment does not name still comes from the file.
    assert config.worker.max_tries == 8
    assert len(config.districts) == 12


def test_environment_overrides_fill_sections_the_file_leaves_out(tmp_path: Path) -> None:
    def alter(raw: dict[str, Any]) -> None:
        for section in ("server", "database", "redis", "sms"):
            del raw[section]

    config = load_altered(
        tmp_path,
        alter,
        environ={"PORT": "8181", "AT_USERNAME": "hpgrievance", "REDIS_URL": "unix:///run/r.sock"},
    )
    assert config.server.port == 8181
    assert config.server.host == "127.0.0.1"
    assert config.sms.africastalking.username == "hpgrievance"
    assert config.sms.africastalking.resolved_base_url == "https://api.africastalking.com"
    assert config.redis.url == "unix:///run/r.sock"
    assert config.database.url == "sqlite:///var/gateway.db"


def test_empty_environment_variable_does_not_override() -> None:
    config = load_config(SHIPPED, environ={"AT_USERNAME": "", "PORT": ""})
    assert config.sms.africastalking.username == "sandbox"
    assert config.server.port == 8080


def test_bad_database_url_from_environment_is_refused() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(SHIPPED, environ={"DATABASE_URL": "mysql://localhost/sampark"})
    assert "database.url" in str(excinfo.value)


# --- known gaps in the schema (see the report to the lead engineer) ---------------------


def test_duplicate_tehsil_in_a_district_is_refused(tmp_path: Path) -> None:
    def alter(raw: dict[str, Any]) -> None:
        tehsils = raw["districts"][0]["tehsils"]
        tehsils[1]["code"] = tehsils[0]["code"]

    with pytest.raises(ConfigError, match="districts: tehsil: code"):
        load_altered(tmp_path, alter)


def test_unknown_timezone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"service\.timezone"):
        load_altered(tmp_path, lambda raw: raw["service"].update(timezone="Asia/Kolkatta"))


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8") + "\nserver:\n  port: 9000\n"
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="'server' appears twice"):
        load_config(path, environ={})


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"sms\.provider: .*from environment variable SMS_PROVIDER"
    ):
        load_config(SHIPPED, environ={"SMS_PROVIDER": "nokia"})


# --- dates: a pattern per language, not CLDR's "medium" ---------------------------------


def test_due_dates_are_digits_in_every_shipped_language(shipped: Config) -> None:
    """CLDR's "medium" date moves between babel releases (2.19 made Assamese's 10-04-2026
    ``2026 এপ্ৰিল 10`` and cut it off the screen); the shipped pattern cannot."""
    from datetime import date

    from gateway.app import catalogs_for

    catalogs = catalogs_for(shipped)
    for lang in shipped.languages:
        assert catalogs.format_date(lang.code, date(2026, 4, 10)) == "10-04-2026", lang.code


def test_a_language_can_choose_its_date_pattern(tmp_path: Path) -> None:
    from datetime import date

    from gateway.app import catalogs_for

    def alter(raw: dict[str, Any]) -> None:
        raw["languages"][1]["date_format"] = "d MMM y"

    config = load_altered(tmp_path, alter)
    assert config.languages[1].code == "en_IN"
    assert catalogs_for(config).format_date("en_IN", date(2026, 4, 10)) == "10 Apr 2026"


@pytest.mark.parametrize("pattern", ["yyyy", "hh:mm", ""])
def test_a_date_pattern_without_day_and_month_is_refused(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_altered(tmp_path, lambda raw: raw["languages"][0].update(date_format=pattern))
    assert "languages[0].date_format" in str(excinfo.value)


def test_every_dependency_is_pinned_in_the_constraints_file() -> None:
    """What `make run`, `make test` and CI install is what constraints.txt pins: a
    dependency added to pyproject.toml without a pin would move under us again."""
    import re
    import tomllib

    root = SHIPPED.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    pins = {
        re.split(r"==", line)[0].strip().lower().replace("_", "-")
        for line in (root / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    names = {
        re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0].lower().replace("_", "-") for dep in wanted
    }
    assert sorted(names - pins) == []


def test_phone_numbers_are_read_in_the_configured_country(tmp_path: Path) -> None:
    def kenya(raw: dict[str, Any]) -> None:
        raw["service"]["country"] = "ke"
        raw["officers"] = [{**raw["officers"][0], "phone": "0711 082000"}]

    assert load_altered(tmp_path, lambda raw: None).service.country == "IN"
    config = load_altered(tmp_path, kenya)
    assert config.service.country == "KE"
    assert config.officers[0].phone == "+254711082000"


def test_an_unknown_country_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"service\.country: unknown region 'XX'"):
        load_altered(tmp_path, lambda raw: raw["service"].update(country="XX"))


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("0177-2623456", "a landline: cannot receive SMS"),
        ("98123456789", "not a valid number for IN"),
        ("+447911123456", "SMS go to IN numbers only"),
    ],
)
def test_an_officer_phone_that_cannot_receive_notices_is_refused(
    tmp_path: Path, phone: str, reason: str
) -> None:
    with pytest.raises(ConfigError, match=rf"officers\[1\]\.phone: '{re.escape(phone)}'.*{reason}"):
        load_altered(tmp_path, lambda raw: raw["officers"][1].update(phone=phone))


def test_an_officer_phone_is_kept_in_e164(tmp_path: Path) -> None:
    config = load_altered(tmp_path, lambda raw: raw["officers"][1].update(phone="098001 00002"))
    assert config.officers[1].phone == "+919800100002"


def test_any_key_is_settable_from_the_environment() -> None:
    """SAMPARK__SECTION__KEY, the value read as YAML; the named variables win."""
    config = load_config(
        SHIPPED,
        environ={
            "SAMPARK__WORKER__MAX_TRIES": "5",
            "SAMPARK__METRICS__ALLOW": "[10.0.0.0/8, 192.168.1.0/24]",
            "SAMPARK__LOG__FORMAT": "json",
            "SAMPARK__SMS__AFRICASTALKING__API_KEY": "atsk_from_env",
            "SAMPARK__SERVER__PORT": "9000",
            "PORT": "9100",
        },
    )
    assert config.worker.max_tries == 5
    assert [str(n) for n in config.metrics.allow] == ["10.0.0.0/8", "192.168.1.0/24"]
    assert config.log.format == "json"
    assert config.sms.africastalking.api_key == "atsk_from_env"
    assert config.server.port == 9100, "PORT wins over SAMPARK__SERVER__PORT"


def test_a_wrong_value_from_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(SHIPPED, environ={"SAMPARK__WORKER__MAX_TRIES": "0"})
    message = str(excinfo.value)
    assert "worker.max_tries" in message
    assert "from environment variable SAMPARK__WORKER__MAX_TRIES" in message
    with pytest.raises(ConfigError) as excinfo:
        load_config(SHIPPED, environ={"SAMPARK__WORKR__MAX_TRIES": "3"})
    assert "workr: unknown key" in str(excinfo.value)
