"""config.py: layered TOML configuration; a typo in a security setting is an error, never ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typoguard.config import Config, HostPort, load_config, parse_host_port, parse_listen
from typoguard.errors import ConfigError, UnknownModel
from typoguard.guard import Guard

NO_ENV: dict[str, str] = {}


def write(tmp_path: Path, text: str, name: str = "typoguard.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(None, environ=NO_ENV)
    assert config == Config()
    assert config.protect.domains == ()
    assert (config.policy.warn_at, config.policy.hold_at, config.policy.reject_at) == (0.4, 0.7, 0.9)
    assert config.protect.use_legit_list is True
    assert config.protect.models is None


def test_empty_file_is_a_valid_configuration(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ=NO_ENV)
    assert config.protect == Config().protect
    assert config.source == str(tmp_path / "typoguard.toml")


def test_shipped_example_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "typoguard.toml"
    config = load_config(example, environ=NO_ENV)
    assert "army.mil" in config.protect.domains


def test_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[protect]
domains = ["army.mil", "gmail.com"]
trusted = ["army.com"]
weights = { "Gmail.com" = 0.5 }
models = ["omission", "suffix_typo"]
layouts = ["qwerty"]

[policy]
reject_at = 0.95
hold_at = 0.8
warn_at = 0
mode = "audit"
""",
    )
    config = load_config(path, environ=NO_ENV)
    assert config.protect.domains == ("army.mil", "gmail.com")
    assert config.protect.trusted == ("army.com",)
    assert config.protect.weights == {"gmail.com": 0.5}
    assert config.protect.models == ("omission", "suffix_typo")
    assert config.policy.warn_at == 0.0 and isinstance(config.policy.warn_at, float)
    assert config.policy.thresholds().reject_at == 0.95
    assert config.policy.mode == "audit"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[protekt]\ndomains = ['army.mil']\n", "unknown section [protekt]"),
        ("[protect]\ndomain = ['army.mil']\n", "unknown key 'domain' in [protect]"),
        ("[policy]\nreject = 0.9\n", "unknown key 'reject'"),
        ("protect = 1\n", "[protect] must be a table"),
        ("[protect]\ndomains = 'army.mil'\n", "must be a list of strings"),
        ("[protect]\ndomains = [1, 2]\n", "must be a list of strings"),
        ("[protect]\nuse_legit_list = 'yes'\n", "must be true or false"),
        ("[policy]\nreject_at = 'high'\n", "must be a number"),
        ("[policy]\nreject_at = true\n", "must be a number"),
        ("[policyd]\nreject_code = 550.5\n", "must be an integer"),
        ("[protect]\nweights = { 'army.mil' = 'x' }\n", "table of numbers"),
        ("[protect]\nweights = { 'army.mil' = 1.5 }\n", "outside 0..1"),
        ("[policy]\nreject_at = 0.5\nhold_at = 0.7\n", "thresholds must satisfy"),
        ("[policy]\nwarn_at = 0.8\n", "thresholds must satisfy"),
        ("[policy]\nreject_at = 1.2\n", "thresholds must satisfy"),
        ("[policy]\nmode = 'block'\n", "mode must be 'enforce' or 'audit'"),
        ("[policyd]\non_error = 'ignore'\n", "on_error"),
        ("[policyd]\nreject_code = 451\n", "reject_code"),
        ("[protect\n", "not valid TOML"),
    ],
)
def test_bad_configuration_is_an_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ=NO_ENV)
    assert message in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.toml", environ=NO_ENV)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[protect]\ndomains = ['m\xfcnchen.de']\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, environ=NO_ENV)


# ----------------------------------------------------------------------------- environment layer
def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[policy]\nmode = 'enforce'\nreject_at = 0.9\n")
    env = {
        "TYPOGUARD_POLICY__MODE": '"audit"',
        "TYPOGUARD_POLICY__REJECT_AT": "0.95",
        "TYPOGUARD_POLICYD__LISTEN": "127.0.0.1:10041",  # a bare word is taken as a string
        "TYPOGUARD_PROTECT__DOMAINS": '["navy.mil"]',
        "UNRELATED": "x",
    }
    config = load_config(path, environ=env)
    assert config.policy.mode == "audit"
    assert config.policy.reject_at == 0.95
    assert config.policyd.listen == "127.0.0.1:10041"
    assert config.protect.domains == ("navy.mil",)


def test_unknown_environment_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown key 'rejectat'"):
        load_config(None, environ={"TYPOGUARD_POLICY__REJECTAT": "0.5"})


def test_environment_must_keep_thresholds_ordered() -> None:
    with pytest.raises(ConfigError, match="thresholds"):
        load_config(None, environ={"TYPOGUARD_POLICY__WARN_AT": "0.95"})


# ----------------------------------------------------------------------------- into a Guard
def test_protect_files_are_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "mil.txt").write_text("# military\narmy.mil\n\nnavy.mil  # the navy\n", "utf-8")
    config = load_config(write(tmp_path, "[protect]\nfiles = ['lists/mil.txt']\n"), environ=NO_ENV)
    guard = Guard.from_config(config)
    assert guard.index.domains == frozenset({"army.mil", "navy.mil"})
    assert guard.check("navy.ml").action.value == "reject"


def test_unknown_model_name_fails_the_build(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "[protect]\ndomains=['army.mil']\nmodels=['omision']\n"), environ=NO_ENV
    )
    with pytest.raises(UnknownModel, match="omision"):
        Guard.from_config(config)


def test_unknown_layout_fails_the_build(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "[protect]\ndomains=['army.mil']\nlayouts=['dvorak']\n"), environ=NO_ENV
    )
    with pytest.raises(ConfigError, match="dvorak"):
        Guard.from_config(config)


def test_invalid_protected_domain_fails_the_build(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[protect]\ndomains=['army..mil']\n"), environ=NO_ENV)
    with pytest.raises(ConfigError, match="empty label"):
        Guard.from_config(config)


def test_trusted_domain_from_config_is_allowed(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "[protect]\ndomains=['army.mil']\ntrusted=['ARMY.ML']\n"), environ=NO_ENV
    )
    guard = Guard.from_config(config)
    assert guard.check("bob@army.ml").action.value == "allow"
    assert guard.check("bob@navy.ml").action.value == "allow"  # navy.mil is not protected here
    assert guard.check("bob@armymil.com").action.value == "reject"


def test_legit_list_can_be_switched_off(tmp_path: Path) -> None:
    on = Guard.from_config(load_config(write(tmp_path, "[protect]\ndomains=['gmail.com']\n"), environ=NO_ENV))
    off = Guard.from_config(
        load_config(
            write(tmp_path, "[protect]\ndomains=['gmail.com']\nuse_legit_list=false\n"), environ=NO_ENV
        )
    )
    assert on.check("ymail.com").action.value == "allow"
    assert off.check("ymail.com").action.value != "allow"


def test_thresholds_from_config_drive_the_action(tmp_path: Path) -> None:
    lax = load_config(
        write(tmp_path, "[protect]\ndomains=['army.mil']\n[policy]\nreject_at=1.0\nhold_at=1.0\n"),
        environ=NO_ENV,
    )
    assert Guard.from_config(lax).check("army.ml").action.value == "warn"


@pytest.mark.parametrize(
    ("protect", "key", "typed"),
    [("münchen.de", "münchen.de", "munchen.de"), ("army.mil", "army.mil.", "army.ml")],
)
def test_weights_apply_whatever_the_spelling_of_the_domain(
    tmp_path: Path, protect: str, key: str, typed: str
) -> None:
    plain = Guard.from_config(
        load_config(write(tmp_path, f"[protect]\ndomains=['{protect}']\n"), environ=NO_ENV)
    )
    weighted = Guard.from_config(
        load_config(
            write(tmp_path, f"[protect]\ndomains=['{protect}']\nweights={{ '{key}' = 0.1 }}\n", "w.toml"),
            environ=NO_ENV,
        )
    )
    assert weighted.check(typed).score == pytest.approx(plain.check(typed).score * 0.1)


def test_weight_for_an_unprotected_domain_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[protect]\ndomains=['army.mil']\nweights={ 'amry.mil' = 0.5 }\n")
    with pytest.raises(ConfigError, match=r"amry\.mil"):
        Guard.from_config(load_config(path, environ=NO_ENV))


def test_unknown_environment_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown section \[polcy\]"):
        load_config(None, environ={"TYPOGUARD_POLCY__MODE": "audit"})


# ----------------------------------------------------------------------------- listen and next-hop addresses
# Every address key is parsed once, at load, by one parser: a mistake stops the program before it starts,
# names the key and says what is wrong with the value.
ADDRESS_KEYS = [  # the environment variable, the key as messages name it, its TOML value around an address
    ("TYPOGUARD_POLICYD__LISTEN", "[policyd] listen", "'{}'"),
    ("TYPOGUARD_POLICYD__METRICS_LISTEN", "[policyd] metrics_listen", "'{}'"),
    ("TYPOGUARD_HTTP__LISTEN", "[http] listen", "'{}'"),
    ("TYPOGUARD_RELAY__LISTEN", "[relay] listen", "'{}'"),
    ("TYPOGUARD_RELAY__NEXT_HOP", "[relay] next_hop", "'{}'"),
    ("TYPOGUARD_SINK__LISTEN", "[sink] listen", "['{}']"),
]
BAD_ADDRESSES = [
    ("127.0.0.1:99999", "port out of range (0..65535)"),
    ("127.0.0.1:65536", "port out of range"),
    ("127.0.0.1", "missing port"),
    ("127.0.0.1:", "missing port"),
    ("[::1]", "missing port"),
    ("127.0.0.1:smtp", "port 'smtp' is not a number"),
    ("127.0.0.1:-1", "is not a number"),
    ("::1:25", "IPv6 address needs brackets"),
    ("2001:db8::25", "IPv6 address needs brackets"),
    ("[::1:25", "missing ']'"),
    ("[::1]25", "expected [address]:port"),
]


@pytest.mark.parametrize(("env", "key", "shape"), ADDRESS_KEYS)
@pytest.mark.parametrize(("value", "message"), BAD_ADDRESSES)
def test_a_bad_address_fails_the_load_naming_key_and_fault(
    env: str, key: str, shape: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={env: shape.format(value)})
    assert key in str(info.value)
    assert message in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(("env", "key", "shape"), [k for k in ADDRESS_KEYS if k[1] != "[http] listen"])
def test_a_missing_host_is_an_error(env: str, key: str, shape: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={env: shape.format(":25")})
    assert f"{key}: missing host in ':25'" in str(info.value)


def test_http_listen_without_host_means_loopback() -> None:
    config = load_config(None, environ={"TYPOGUARD_HTTP__LISTEN": "':8080'"})
    assert config.http.listen_address == ("127.0.0.1", 8080)


def test_a_unix_socket_only_where_it_is_understood() -> None:
    config = load_config(
        None, environ={"TYPOGUARD_POLICYD__LISTEN": "'127.0.0.1:10040, unix:/run/tg.sock ,[::1]:0'"}
    )
    assert [str(a) for a in config.policyd.listen_addresses] == [
        "127.0.0.1:10040",
        "unix:/run/tg.sock",
        "[::1]:0",
    ]
    with pytest.raises(ConfigError, match=r"\[relay\] next_hop: a UNIX socket is not allowed here"):
        load_config(None, environ={"TYPOGUARD_RELAY__NEXT_HOP": "'unix:/run/mta.sock'"})
    with pytest.raises(ConfigError, match=r"\[policyd\] listen: missing socket path"):
        load_config(None, environ={"TYPOGUARD_POLICYD__LISTEN": "'unix:'"})
    with pytest.raises(ConfigError, match=r"\[policyd\] listen is empty"):
        load_config(None, environ={"TYPOGUARD_POLICYD__LISTEN": "' , '"})


def test_addresses_are_parsed_for_the_servers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[policyd]
listen = "unix:/var/spool/postfix/private/typoguard"
metrics_listen = "[::1]:9040"
[http]
listen = "0.0.0.0:8025"
[relay]
listen = "[::]:25"
next_hop = "mx.example.org:2525"
[sink]
listen = ["0.0.0.0:25", "[2001:db8::1]:25"]
""",
    )
    config = load_config(path, environ=NO_ENV)
    assert [str(a) for a in config.policyd.listen_addresses] == ["unix:/var/spool/postfix/private/typoguard"]
    assert config.policyd.metrics_address == ("::1", 9040)
    assert config.http.listen_address == ("0.0.0.0", 8025)
    assert config.relay.listen_address == ("::", 25)
    assert config.relay.next_hop_address == ("mx.example.org", 2525)
    assert config.sink.listen_addresses == (("0.0.0.0", 25), ("2001:db8::1", 25))
    assert load_config(None, environ=NO_ENV).policyd.metrics_address is None  # off by default


@given(
    host=st.one_of(
        st.ip_addresses().map(str),
        st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True),
    ),
    port=st.integers(0, 65535),
)
def test_an_address_reads_back_as_written(host: str, port: int) -> None:
    address = HostPort(host, port)
    assert parse_host_port(str(address), "address") == address
    assert parse_listen(str(address), "address") == address
