"""``typoguard config check``: every problem of a config file at once, each at its ``file:line``; exit 0/1/2.

Bad files are written with a marker comment on each line that must be reported (``# <- fragment``): the test
finds the line numbers itself, so a file can be edited without counting lines. The checks run on the real
parts (the store, TLS, Postfix tools, the policy service's build), nothing mocked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from typoguard.cli import main
from typoguard.cli.config import check_config
from typoguard.config_check import key_lines

ROOT = Path(__file__).resolve().parents[1]
NO_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _no_typoguard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TYPOGUARD_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "typoguard.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def expected_lines(text: str) -> list[tuple[int, str]]:
    """(line, fragment) for every line marked ``# <- fragment``."""
    return [
        (n, m[1].strip())
        for n, line in enumerate(text.splitlines(), 1)
        if (m := re.search(r"# <- (.*)$", line))
    ]


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["config", "check", *args], env=env)
    return result.exit_code, result.output


def good_config(tmp_path: Path) -> str:
    return f"""
[protect]
domains = ["army.mil", "navy.mil"]

[policy]
mode = "audit"
internal_networks = ["10.0.0.0/8"]

[store]
data_dir = "{tmp_path / "state"}"
"""


# ----------------------------------------------------------------------------- where keys are
def test_key_lines_finds_tables_keys_and_dotted_keys() -> None:
    text = """# [protect] in a comment is not a table
# domains = ["commented.out"]
protect.trusted = ["army.com"]

[policy]
mode = "audit"   # a comment
"reject_at" = 0.95
help_text = \"\"\"
[store]
data_dir = "inside a multi-line string"
\"\"\"

[protect.weights]
"army.mil" = 0.5

[store]
data_dir = "/var/lib/typoguard"
domains = [
  "a.org", "b.org",
]
"""
    lines = key_lines(text)
    assert lines["protect", "trusted"] == 3
    assert lines["protect",] == 3  # a dotted key names its table
    assert lines["policy",] == 5
    assert lines["policy", "mode"] == 6
    assert lines["policy", "reject_at"] == 7
    assert lines["policy", "help_text"] == 8
    assert lines["protect", "weights"] == 13
    assert lines["store",] == 16  # not the "[store]" inside the string
    assert lines["store", "data_dir"] == 17
    assert lines["store", "domains"] == 18
    assert ("protect", "domains") not in lines


# ----------------------------------------------------------------------------- good files
def test_a_good_file_has_no_problems_and_exits_0(tmp_path: Path) -> None:
    code, output = run("--config", str(write(tmp_path, good_config(tmp_path))))
    assert code == 0, output
    assert output.endswith("typoguard.toml: no problems\n")
    assert not (tmp_path / "state").exists()  # checking creates nothing


def test_the_example_config_passes() -> None:
    code, output = run("--config", str(ROOT / "examples" / "typoguard.toml"))
    assert code == 0, output


def test_the_debian_config_protects_nothing_and_says_so() -> None:
    path = ROOT / "debian" / "typoguard.toml"
    header = 1 + path.read_text("utf-8").splitlines().index("[protect]")
    code, output = run("--config", str(path))
    assert code == 1
    assert output.splitlines() == [
        f"{path}:{header}: nothing to protect: {path} has [protect] domains = [] and no files;"
        " typoguard serve, relay and milter refuse to start",
        f"{path}: 1 problem",
    ]


def test_without_a_file_the_defaults_protect_nothing() -> None:
    code, output = run()
    assert code == 1 and "defaults: nothing to protect: no config file was read" in output


def test_a_sink_only_host_need_not_protect_anything(tmp_path: Path) -> None:
    text = f'[sink]\ndomains = ["army-mil.com=army.mil"]\n[store]\ndata_dir = "{tmp_path}"\n'
    code, output = run("--config", str(write(tmp_path, text)))
    assert code == 0, output


# ----------------------------------------------------------------------------- every problem at once
BAD = """\
# every line marked below must be reported, and nothing else
[protect]
domains = ["army.mil", "bad..name"]          # <- [protect] domains: 'bad..name': empty label
domian = ["navy.mil"]                        # <- unknown key 'domian' in [protect]; did you mean domains?
files = ["absent.txt", "list.txt"]           # <- [protect] files: cannot read {dir}/absent.txt
weights = {{ "gmail.com" = 0.5 }}              # <- [protect] weights: gmail.com is not a protected domain
models = ["omission", "omision"]             # <- [protect] models: unknown typo model(s) omision
layouts = ["dvorak"]                         # <- [protect] layouts: unknown keyboard layout(s) dvorak

[policy]
reject_at = 0.5
hold_at = 0.7                                # <- policy thresholds must satisfy
mode = "block"                               # <- [policy] mode must be 'enforce' or 'audit'
internal_networks = ["10.0.0.0/33"]          # <- [policy] internal_networks: '10.0.0.0/33' does not appear
internal_senders = ["*.army.mil", "x..y"]    # <- [policy] internal_senders: 'x..y'

[policyd]
listen = "127.0.0.1:99999"                   # <- [policyd] listen: port out of range (0..65535)
reject_template = "Not sent to {{nosuch}}"     # <- [policyd] reject_template: unknown field(s) nosuch
reject_code = "550"                          # <- [policyd] reject_code must be an integer
metrics_listen = "127.0.0.1:8025"

[polcy]                                      # <- unknown section [polcy]; did you mean policy?
mode = "audit"

[store]
data_dir = "{dir}/a-file"                    # <- [store] data_dir {dir}/a-file: {dir}/a-file is not a
batch_size = 0                               # <- [store] batch_size must be at least 1
retention = "forever"                        # <- [store] retention: not a duration: 'forever'

[log]
level = "loud"                               # <- [log] level must be one of debug, info, warning, error
file = "{dir}/no/such/dir/typoguard.log"     # <- [log] file {dir}/no/such/dir/typoguard.log: no directory

[http]                                       # <- [http] session_secret_file {dir}/a-file/http-session.key
enabled = true
listen = "127.0.0.1:8025"                    # <- [http] listen 127.0.0.1:8025 is also [policyd] metrics

[relay]                                      # <- [relay] quarantine_dir {dir}/a-file/quarantine: {dir}/a
tls_cert = "cert.pem"                        # <- [relay] tls_cert and tls_key go together
listen = "[::1:25"                           # <- [relay] listen: missing ']'

[sink]
retention = "soon"                           # <- [sink] retention is not a duration: 'soon'
tls_cert = "absent-cert.pem"                 # <- [sink] tls_cert {dir}/absent-cert.pem: no such file
tls_key = "absent-key.pem"                   # <- [sink] tls_key {dir}/absent-key.pem: no such file
"""


def test_every_problem_is_reported_at_its_line(tmp_path: Path) -> None:
    text = BAD.format(dir=tmp_path)
    path = write(tmp_path, text)
    (tmp_path / "a-file").write_text("")
    (tmp_path / "list.txt").write_text("navy.mil\n# a comment\nok.org  # fine\nbad..one\n")
    code, output = run("--config", str(path))
    assert code == 1
    assert "Usage:" not in output and "Traceback" not in output
    reported = output.splitlines()
    expected = expected_lines(text)
    for line, fragment in expected:
        assert any(r.startswith(f"{path}:{line}: {fragment}") for r in reported), (line, fragment, output)
    # a bad name in a [protect] file is reported at its own line in that file
    assert f"{tmp_path / 'list.txt'}:4: [protect] domains: 'bad..one': empty label" in output
    assert len(reported) == len(expected) + 2  # + list.txt + the summary line
    assert reported[-1] == f"{path}: {len(expected) + 1} problems"


def test_problems_are_listed_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "[policy]\nmode = 'x'\n[protect]\ndomains = ['a..b']\n[policyd]\non_error = 'y'\n")
    _, output = run("--config", str(path))
    lines = [int(m[1]) for m in re.finditer(rf"^{re.escape(str(path))}:(\d+):", output, re.M)]
    assert lines == sorted(lines) == [2, 4, 6]


def test_a_syntax_error_is_reported_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "[protect]\ndomains = ['army.mil'\n[policy]\n")
    code, output = run("--config", str(path))
    assert code == 1
    assert re.match(rf"{re.escape(str(path))}:3:\d+: not valid TOML: ", output), output
    assert "Usage:" not in output


def test_a_file_that_is_not_utf8_is_a_problem_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[protect]\n# M\xfcnchen\ndomains = []\n")
    code, output = run("--config", str(path))
    assert code == 1 and output.startswith(f"{path}:2: not UTF-8")


def test_a_file_that_cannot_be_read_exits_2_without_a_usage_banner(tmp_path: Path) -> None:
    code, output = run("--config", str(tmp_path / "absent.toml"))
    assert code == 2
    assert "cannot read config" in output and "Usage:" not in output


def test_a_misused_command_exits_2() -> None:
    assert run("--no-such-option")[0] == 2


def test_the_environment_is_checked_and_named(tmp_path: Path) -> None:
    path = write(tmp_path, good_config(tmp_path))
    env = {"TYPOGUARD_POLICY__MODE": '"block"', "TYPOGUARD_POLICY__REJECTAT": "0.5"}
    code, output = run("--config", str(path), env=env)
    assert code == 1
    assert "environment TYPOGUARD_POLICY__MODE: [policy] mode must be 'enforce' or 'audit'" in output
    assert (
        "environment TYPOGUARD_POLICY__REJECTAT: unknown key 'rejectat' in [policy]; did you mean" in output
    )


# ----------------------------------------------------------------------------- what needs the roles' code
def test_the_policy_service_build_catches_what_no_single_check_does(tmp_path: Path) -> None:
    text = good_config(tmp_path) + '\n[policyd]\nwarn_header = "X-Bad Header"\n'
    path = write(tmp_path, text)
    code, output = run("--config", str(path))
    line = text.splitlines().index('warn_header = "X-Bad Header"') + 1
    assert code == 1
    assert f"{path}:{line}: [policyd] warn_header 'X-Bad Header' is not a valid header name" in output


def test_the_sink_build_checks_its_domains(tmp_path: Path) -> None:
    text = good_config(tmp_path) + '\n[sink]\ndomains = ["army-mil.com=not a domain"]\n'
    code, output = run("--config", str(write(tmp_path, text)))
    assert code == 1 and "[sink] domains" in output, output


def test_an_unreachable_postgresql_store_is_a_problem(tmp_path: Path) -> None:
    text = good_config(tmp_path) + '\n[store]\nurl = "postgresql+psycopg://typoguard@127.0.0.1:1/typoguard"\n'
    text = text.replace("[store]\ndata_dir", "[storex]\ndata_dir", 1).replace("[storex]\n", "")
    path = write(tmp_path, text)
    checked = check_config(path, NO_ENV)
    messages = [str(p) for p in checked.sorted_problems()]
    assert any(
        "[store] url: cannot connect to postgresql+psycopg://typoguard@127.0.0.1:1/typoguard" in m
        or "[store] url: database driver missing" in m
        for m in messages
    ), messages


def test_tls_files_are_loaded(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    text = good_config(tmp_path) + '\n[relay]\ntls_cert = "cert.pem"\ntls_key = "key.pem"\n'
    code, output = run("--config", str(write(tmp_path, text)))
    line = text.splitlines().index('tls_cert = "cert.pem"') + 1
    assert code == 1 and f":{line}: [relay] tls_cert/tls_key: " in output, output


def test_relay_users_file_is_read(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("relay.example.org")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "relay.pem"))
    (tmp_path / "users").write_text("# users\nalice:plaintext\n")
    text = good_config(tmp_path) + (
        '\n[relay]\ntls_cert = "relay.pem"\ntls_key = "relay.pem"\nauth_users_file = "users"\n'
    )
    code, output = run("--config", str(write(tmp_path, text)))
    assert code == 1
    assert f"[relay] auth_users_file {tmp_path / 'users'}:2: expected name:scrypt$..." in output
    assert "tls_cert" not in output  # a good certificate and key


@pytest.mark.skipif(shutil.which("postqueue") is None, reason="Postfix tools not installed")
def test_held_mail_on_postfix_needs_a_readable_instance(tmp_path: Path) -> None:
    instance = tmp_path / "postfix"
    instance.mkdir()
    text = good_config(tmp_path) + f'\n[postfix]\nconfig_directory = "{instance}"\n'
    path = write(tmp_path, text)
    code, output = run("--config", str(path))
    assert code == 1 and f"[postfix] config_directory: {instance}/main.cf: no such file" in output
    (instance / "main.cf").write_text("# empty\n")
    assert run("--config", str(path))[0] == 0


def test_held_mail_on_postfix_needs_its_tools(tmp_path: Path) -> None:
    instance = tmp_path / "postfix"
    instance.mkdir()
    (instance / "main.cf").write_text("# empty\n")
    path = write(tmp_path, good_config(tmp_path) + f'\n[postfix]\nconfig_directory = "{instance}"\n')
    code, output = run("--config", str(path), env={"PATH": str(tmp_path)})
    assert code == 1
    assert "[postfix] postqueue not found on PATH" in output and "[postfix] postsuper not found" in output


# ----------------------------------------------------------------------------- the console script
def test_exit_codes_of_the_installed_command(typoguard_exe: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [typoguard_exe, "config", "check", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    good = status("--config", str(write(tmp_path, good_config(tmp_path), "good.toml")))
    bad = status("--config", str(write(tmp_path, "[policy]\nmode = 'x'\n", "bad.toml")))
    missing = status("--config", str(tmp_path / "absent.toml"))
    assert (good.returncode, bad.returncode, missing.returncode) == (0, 1, 2)
    assert "[policy] mode must be" in bad.stdout and bad.stderr == ""
    assert "cannot read config" in missing.stderr and "Usage:" not in missing.stderr


def test_alert_problems_point_at_the_key_in_their_own_alert_table(tmp_path: Path) -> None:
    """``[[alert]]`` is an array of tables: each problem names the line of the offending key in the right
    table (not the last plain table before it, not the file as a whole), including the checks that need the
    Guard (a digest to a look-alike) and the file system (the webhook key)."""
    text = f"""
[protect]
domains = ["army.mil"]

[store]
data_dir = "{tmp_path / "state"}"

[watch]
every = "6h"

[[alert]]
type = "webhook"
url = "https://siem.example/hook"
secret_file = "absent.key"  # <- [[alert]] #1 secret_file {tmp_path / "absent.key"}: no such file

[[alert]]
type = "email"
min_severity = "urgent"                      # <- [[alert]] #2 min_severity must be info, warning or critical
to = ["soc@army.mil", "soc@army.ml"]         # <- [[alert]] #2 to: soc@army.ml look(s) like a protected domain

[[alert]]
type = "webhook"
urll = "x"                                   # <- unknown key 'urll' in [[alert]] #3; did you mean url?
retries = -1                                 # <- [[alert]] #3 retries >= 0, backlog >= 1, timeout > 0

[[alert]]
type = "pager"                               # <- [[alert]] #4 type must be one of webhook, syslog, email
"""
    path = write(tmp_path, text)
    code, output = run("--config", str(path))
    assert code == 1
    reported = output.splitlines()
    expected = expected_lines(text)
    for line, fragment in expected:
        assert any(r.startswith(f"{path}:{line}: {fragment}") for r in reported), (line, fragment, output)
    # #3 also lacks its url: no key of it is in the table, so the line of its header
    header3 = [n for n, line in enumerate(text.splitlines(), 1) if line == "[[alert]]"][2]
    assert f'{path}:{header3}: [[alert]] #3 (webhook) needs url = "https://..."' in reported
    assert len(reported) == len(expected) + 2  # + #3's url + the summary line
