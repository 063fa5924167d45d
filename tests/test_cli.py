"""The ``typoguard check`` / ``typoguard variants`` contract other tools script against.

Exit codes, stdin streaming and the JSON shape are tested through the installed console script in a real
subprocess (what a calling tool sees); cheaper checks of messages use click's CliRunner.
"""

from __future__ import annotations

import csv
import io
import json
import os
import selectors
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from typoguard.cli import main

PROTECT = [
    "army.mil",
    "navy.mil",
    "us.af.mil",
    "state.gov",
    "ca.ibm.com",
    "gmail.com",
    "outlook.com",
    "comcast.net",
    "verizon.net",
]
PROTECT_ARGS = [arg for d in PROTECT for arg in ("--protect", d)]
KEYS = {"recipient", "domain", "action", "intended", "kind", "score", "reason"}
ACTIONS = {"allow", "warn", "hold", "reject", "invalid"}


def run(
    exe: str, args: Sequence[str], stdin: bytes | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
    return subprocess.run(
        [exe, *args], input=stdin, capture_output=True, timeout=timeout, env=env, check=False
    )


def invoke(args: Sequence[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    """In-process run through click's CliRunner: the same code, without a process start (cheaper)."""
    result = CliRunner().invoke(main, list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def check_json(exe: str, lines: Sequence[str | bytes], *extra: str) -> tuple[int, list[dict[str, Any]]]:
    data = b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines)
    proc = run(exe, ["check", *PROTECT_ARGS, "--format", "json", *extra, "-"], data)
    assert proc.stderr == b"", proc.stderr.decode(errors="replace")
    out = proc.stdout.decode("utf-8")  # the output is UTF-8 whatever came in
    return proc.returncode, [json.loads(line) for line in out.splitlines()]


def assert_shape(obj: dict[str, Any]) -> None:
    assert obj["action"] in ACTIONS
    if obj["action"] == "invalid":
        assert set(obj) == KEYS | {"error"}
        assert isinstance(obj["error"], str) and obj["error"]
        assert obj["domain"] is None
    else:
        assert set(obj) == KEYS
        assert isinstance(obj["domain"], str)
    assert obj["intended"] is None or isinstance(obj["intended"], str)
    assert obj["kind"] is None or isinstance(obj["kind"], str)
    assert (obj["intended"] is None) == (obj["kind"] is None) or obj["kind"] == "mixed_script"
    assert isinstance(obj["score"], int | float) and not isinstance(obj["score"], bool)
    assert 0.0 <= obj["score"] <= 1.0
    assert isinstance(obj["reason"], str) and obj["reason"]


# ============================================================================= check --format json
GOLDEN = [
    # (input line, action or set of acceptable actions, intended)
    ("bob@army.ml", {"reject"}, "army.mil"),
    ("navy.ml", {"reject"}, "navy.mil"),
    ("us.af.ml", {"reject"}, "us.af.mil"),
    ("jane@caibm.com", {"hold", "reject"}, "ca.ibm.com"),
    ("gmial.com", {"hold", "reject"}, "gmail.com"),
    ("x@outlo0k.com", {"hold", "reject"}, "outlook.com"),
    ("ymail.com", {"allow"}, None),
    ("bob@mail.com", {"allow"}, None),
    ("gouv.ml", {"allow"}, None),
    ("verizon.com", {"warn"}, "verizon.net"),
    ("us.ibm.com", {"allow"}, None),
    ("bob@army.mil", {"allow"}, None),
    ("example.org", {"allow"}, None),
]


def test_json_golden_cases(typoguard_exe: str) -> None:
    code, out = check_json(typoguard_exe, [line for line, _, _ in GOLDEN])
    assert code == 1
    assert len(out) == len(GOLDEN)
    for obj, (line, actions, intended) in zip(out, GOLDEN, strict=True):
        assert_shape(obj)
        assert obj["recipient"] == line
        assert obj["action"] in actions, obj
        if intended is not None:
            assert obj["intended"] == intended, obj


def test_json_reason_for_army_ml(typoguard_exe: str) -> None:
    _, [obj] = check_json(typoguard_exe, ["bob@army.ml"])
    assert obj["reason"] == "army.ml looks like army.mil with the 'i' of .mil dropped"
    assert obj["domain"] == "army.ml"
    assert obj["kind"] == "suffix_typo"


BAD_LINES: list[tuple[bytes, str]] = [
    (b"", "empty"),
    (b"notanaddress", "no '@'"),
    (b"bob@", "domain"),
    (b"bob@" + b"a" * 64 + b".mil", "64 characters"),
    (b"bob@" + b".".join([b"a" * 60] * 4) + b".abcdef.com", "254 characters"),
    (b"bob@arm\xffy.mil", "UTF-8"),
    (b"bob@\xc3(.com", "UTF-8"),
]


def test_malformed_lines_are_invalid_and_processing_goes_on(typoguard_exe: str) -> None:
    lines: list[bytes] = []
    for bad, _ in BAD_LINES:
        lines += [bad, b"bob@army.ml"]
    code, out = check_json(typoguard_exe, lines)
    assert code == 1
    assert len(out) == len(lines), "one object per input line, bad or not"
    for i, (_, why) in enumerate(BAD_LINES):
        bad, good = out[2 * i], out[2 * i + 1]
        assert_shape(bad)
        assert bad["action"] == "invalid", bad
        assert why in bad["error"], bad
        assert good["action"] == "reject" and good["recipient"] == "bob@army.ml"


def test_invalid_utf8_recipient_is_echoed_readably(typoguard_exe: str) -> None:
    _, [obj] = check_json(typoguard_exe, [b"bob@arm\xffy.mil"])
    assert obj["recipient"] == "bob@arm\ufffdy.mil"


def test_mixed_script_is_flagged(typoguard_exe: str) -> None:
    code, [obj] = check_json(typoguard_exe, ["bob@pаypal.com"])  # Cyrillic а
    assert code == 1
    assert obj["action"] == "warn" and obj["kind"] == "mixed_script"
    assert obj["domain"] == "xn--pypal-4ve.com"


def test_line_endings_and_surrounding_space_are_ignored(typoguard_exe: str) -> None:
    proc = run(
        typoguard_exe,
        ["check", *PROTECT_ARGS, "--format", "json", "-"],
        b"  bob@army.ml  \r\nalice@army.mil\r\nlast@navy.ml",
    )  # no newline at the end
    out = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [o["recipient"] for o in out] == ["bob@army.ml", "alice@army.mil", "last@navy.ml"]
    assert [o["action"] for o in out] == ["reject", "allow", "reject"]


def test_output_keeps_input_order_over_a_long_stream(typoguard_exe: str) -> None:
    # Many recipients share few domains: each line must still carry its own recipient, in order.
    domains = ["army.ml", "army.mil", "gmial.com", "example.org", "bad..name"]
    lines = [f"user{i}@{domains[i % len(domains)]}" for i in range(6000)]
    code, out = check_json(typoguard_exe, lines)
    assert code == 1
    assert [o["recipient"] for o in out] == lines
    assert [o["action"] for o in out[:5]] == ["reject", "allow", "reject", "allow", "invalid"]
    assert all(o["action"] == out[i % 5]["action"] for i, o in enumerate(out))


def test_recipients_on_the_command_line_in_json(typoguard_exe: str) -> None:
    proc = run(typoguard_exe, ["check", *PROTECT_ARGS, "--format", "json", "a@army.mil", "b@army.ml"])
    out = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [(o["recipient"], o["action"]) for o in out] == [("a@army.mil", "allow"), ("b@army.ml", "reject")]
    assert proc.returncode == 1


# ============================================================================= streaming
def _read_line_within(proc: subprocess.Popen[bytes], seconds: float) -> bytes:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as sel:  # not select(): file descriptors may be past 1024 here
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf and time.monotonic() < deadline:
            if sel.select(max(0.0, deadline - time.monotonic())):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
    return buf


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_stdin_is_streamed_answer_before_end_of_input(typoguard_exe: str, fmt: str) -> None:
    proc = subprocess.Popen(
        [typoguard_exe, "check", "--protect", "army.mil", "--format", fmt, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"bob@army.ml\n")
        proc.stdin.flush()
        first = _read_line_within(proc, 15.0)
        if fmt == "text":  # a header line first, then the verdict
            first += _read_line_within(proc, 15.0) if first.count(b"\n") < 2 else b""
        assert b"army.mil" in first, f"no answer while stdin is still open: {first!r}"
        assert b"reject" in first
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


# ============================================================================= exit codes
@pytest.mark.parametrize(
    ("recipients", "code"),
    [
        (["bob@army.mil", "gmail.com", "example.org", "ymail.com"], 0),
        (["bob@army.mil", "bob@army.ml"], 1),  # reject
        (["bob@army.mil", "verizon.com"], 1),  # warn is flagged too
        (["bob@army.mil", "notanaddress"], 1),  # invalid
    ],
)
@pytest.mark.parametrize(
    ("fmt", "via_stdin"),
    [("text", False), ("json", True), ("text", True)],
    ids=["text-args", "json-stdin", "text-stdin"],
)
def test_exit_code(typoguard_exe: str, recipients: list[str], code: int, fmt: str, via_stdin: bool) -> None:
    if via_stdin:
        proc = run(
            typoguard_exe,
            ["check", *PROTECT_ARGS, "--format", fmt, "-"],
            "".join(r + "\n" for r in recipients).encode(),
        )
    else:
        proc = run(typoguard_exe, ["check", *PROTECT_ARGS, "--format", fmt, *recipients])
    assert proc.returncode == code, proc.stderr.decode()


def test_empty_stdin_is_all_allowed(typoguard_exe: str) -> None:
    proc = run(typoguard_exe, ["check", "--protect", "army.mil", "--format", "json", "-"], b"")
    assert proc.returncode == 0
    assert proc.stdout == b""


USAGE_ERRORS = [
    (["check", "--protect", "army.mil"], "give recipients"),
    (["check", "bob@army.ml"], "nothing to protect"),
    (["check", "--protect", "army.mil", "-", "bob@army.ml"], "cannot be combined"),
    (["check", "--protect", "army.mil", "--format", "xml", "bob@army.ml"], "xml"),
    (["check", "--protect", "army..mil", "bob@army.ml"], "army..mil"),
    (["check", "--protect-file", "/nonexistent/list.txt", "bob@army.ml"], "cannot read"),
    (["check", "--config", "/nonexistent/typoguard.toml", "bob@army.ml"], "cannot read config"),
    (["check", "--no-such-option", "bob@army.ml"], "no-such-option"),
    (["variants"], "Missing argument"),
    (["variants", "bad..name"], "empty label"),
    (["variants", "--model", "omision", "army.mil"], "omision"),
    (["variants", "--format", "xml", "army.mil"], "xml"),
    (["variants", "--limit", "0", "army.mil"], "limit"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize(("args", "message"), [USAGE_ERRORS[i] for i in (0, 1, 3, 10)])
def test_usage_errors_exit_2_from_the_console_script(
    typoguard_exe: str, args: list[str], message: str
) -> None:
    proc = run(typoguard_exe, args, b"")
    assert proc.returncode == 2
    assert message in proc.stderr.decode()
    assert proc.stdout == b""


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS)
def test_usage_errors_exit_2_with_a_message(args: list[str], message: str) -> None:
    code, out, err = invoke(args, b"")
    assert code == 2
    assert message in err
    assert out == ""


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[protect]\ndomians = ['army.mil']\n", "unknown key 'domians'"),
        ("[protection]\ndomains = ['army.mil']\n", "unknown section [protection]"),
        ("[protect]\ndomains = ['army.mil']\n[policy]\nwarn_at = 0.95\n", "thresholds"),
        ("[protect]\ndomains = ['army.mil']\nmodels = ['omision']\n", "omision"),
    ],
)
def test_bad_config_file_exits_2(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "typoguard.toml"
    path.write_text(toml, "utf-8")
    code, _, err = invoke(["check", "--config", str(path), "bob@army.ml"])
    assert code == 2
    assert message in err


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ("policyd", "listen = '127.0.0.1:99999'", "[policyd] listen: port out of range (0..65535)"),
        ("policyd", "listen = '::1:10040'", "[policyd] listen: an IPv6 address needs brackets"),
        ("policyd", "metrics_listen = '127.0.0.1'", "[policyd] metrics_listen: missing port"),
        ("http", "listen = '127.0.0.1:80800'", "[http] listen: port out of range"),
    ],
)
def test_serve_with_a_bad_address_exits_2_naming_the_key(
    typoguard_exe: str, tmp_path: Path, section: str, value: str, message: str
) -> None:
    """Found as the config is read, before anything starts: exit 2 (configuration), not 1 (cannot listen)."""
    config = tmp_path / "typoguard.toml"
    config.write_text(f"[protect]\ndomains = ['army.mil']\n[store]\nenabled = false\n[{section}]\n{value}\n")
    proc = run(typoguard_exe, ["serve", "--config", str(config)])
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr.decode()
    assert proc.stdout == b""


@pytest.mark.parametrize(
    ("resolver", "message"),
    [
        ("127.0.0.1:99999", "resolver: port out of range (1..65535) in '127.0.0.1:99999'"),
        ("127.0.0.1:0", "resolver: port out of range (1..65535)"),
        ("[2001:db8::53]:dns", "resolver: port 'dns' is not a number"),
        ("dns.example", "resolver 'dns.example' is not an IP address"),
    ],
)
def test_exposure_names_what_is_wrong_with_a_resolver(resolver: str, message: str) -> None:
    code, out, err = invoke(["exposure", "--protect", "army.mil", "--resolver", resolver])
    assert code == 2
    assert message in err
    assert out == ""


# ============================================================================= where protection comes from
def test_protection_from_config_and_files_adds_up(typoguard_exe: str, tmp_path: Path) -> None:
    (tmp_path / "mil.txt").write_text("# military\nnavy.mil\n", "utf-8")
    extra = tmp_path / "extra.txt"
    extra.write_text("gmail.com\n", "utf-8")
    config = tmp_path / "typoguard.toml"
    config.write_text(
        "[protect]\ndomains = ['army.mil']\nfiles = ['mil.txt']\ntrusted = ['army.com']\n", "utf-8"
    )
    proc = run(
        typoguard_exe,
        [
            "check",
            "--config",
            str(config),
            "--protect-file",
            str(extra),
            "--protect",
            "state.gov",
            "--format",
            "json",
            "-",
        ],
        b"army.ml\nnavy.ml\ngmial.com\nstate.gv\narmy.com\ncomcast.ne\n",
    )
    actions = [json.loads(x)["action"] for x in proc.stdout.decode().splitlines()]
    assert actions[:4] != ["allow"] * 4 and "allow" not in actions[:4]
    assert actions[4:] == ["allow", "allow"]  # trusted; comcast.net is not protected here
    assert proc.returncode == 1


# ============================================================================= text format
def test_text_table_is_readable(typoguard_exe: str) -> None:
    proc = run(typoguard_exe, ["check", *PROTECT_ARGS, "bob@army.ml", "alice@army.mil", "notanaddress"])
    text = proc.stdout.decode()
    for word in (
        "recipient",
        "action",
        "did you mean",
        "score",
        "bob@army.ml",
        "reject",
        "army.mil",
        "alice@army.mil",
        "allow",
        "notanaddress",
        "invalid",
    ):
        assert word in text, word
    assert "\x1b[" not in text, "no colour codes when the output is not a terminal"
    assert proc.returncode == 1
    assert text.index("bob@army.ml") < text.index("alice@army.mil") < text.index("notanaddress")


def test_text_stream_has_one_line_per_recipient(typoguard_exe: str) -> None:
    proc = run(typoguard_exe, ["check", *PROTECT_ARGS, "-"], b"bob@army.ml\nalice@army.mil\n")
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 3  # a header, then one row each
    assert lines[1].split()[:3] == ["reject", "bob@army.ml", "army.mil"]
    assert lines[2].split()[:2] == ["allow", "alice@army.mil"]


def test_cli_runner_and_console_script_agree() -> None:
    result = CliRunner().invoke(main, ["check", "--protect", "army.mil", "--format", "json", "bob@army.ml"])
    assert result.exit_code == 1
    assert json.loads(result.output)["action"] == "reject"


def test_version_and_help() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["--version"]).exit_code == 0
    help_text = runner.invoke(main, ["check", "--help"]).output
    assert "--format" in help_text and "--protect" in help_text


# ============================================================================= variants
def variants_json(*args: str) -> list[dict[str, Any]]:
    code, out, err = invoke(["variants", "--format", "json", *args])
    assert code == 0, err
    return [json.loads(x) for x in out.splitlines()]


def check_many_json(exe: str, protect: str, names: Sequence[str]) -> list[dict[str, Any]]:
    # stdin through the real console script: the streaming reader needs a real file descriptor
    proc = run(
        exe,
        ["check", "--protect", protect, "--format", "json", "-"],
        "".join(n + "\n" for n in names).encode(),
    )
    return [json.loads(x) for x in proc.stdout.decode().splitlines()]


def test_variants_json_shape_and_ranking(typoguard_exe: str) -> None:
    proc = run(typoguard_exe, ["variants", "--format", "json", "army.mil"])
    assert proc.returncode == 0
    out = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert out
    assert all(set(o) == {"domain", "variant", "unicode", "kind", "score"} for o in out)
    assert all(o["domain"] == "army.mil" and 0.0 < o["score"] <= 1.0 for o in out)
    scores = [o["score"] for o in out]
    assert scores == sorted(scores, reverse=True), "ranked best first"
    by_name = {o["variant"]: o for o in out}
    assert len(by_name) == len(out), "each variant once"
    assert by_name["army.ml"]["kind"] == "suffix_typo"
    assert by_name["armymil.com"]["kind"] == "dot_omission"
    assert by_name["army.mil.com"]["kind"] == "suffix_append"
    assert by_name["army.com"]["kind"] == "suffix_swap"
    assert by_name["xn--rmy-5cd.mil"]["unicode"] == "аrmy.mil"
    assert "army.mil" not in by_name


def test_variants_of_a_subdomain_skip_the_own_organisation() -> None:
    names = [o["variant"] for o in variants_json("ca.ibm.com")]
    assert "caibm.com" in names
    assert not [n for n in names if n.endswith(".ibm.com") or n == "ibm.com"]


def test_variants_list_and_csv_match_json() -> None:
    as_json = variants_json("gmail.com", "navy.mil")
    code, listed, _ = invoke(["variants", "gmail.com", "navy.mil"])
    assert code == 0
    assert listed.splitlines() == [o["variant"] for o in as_json]
    first_navy = next(i for i, o in enumerate(as_json) if o["domain"] == "navy.mil")
    assert all(o["domain"] == "gmail.com" for o in as_json[:first_navy])
    assert all(o["domain"] == "navy.mil" for o in as_json[first_navy:])
    _, text, _ = invoke(["variants", "--format", "csv", "gmail.com", "navy.mil"])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["domain", "variant", "unicode", "kind", "score"]
    assert [(r[0], r[1], r[2], r[3], float(r[4])) for r in rows[1:]] == [
        (o["domain"], o["variant"], o["unicode"], o["kind"], o["score"]) for o in as_json
    ]


def test_variants_filters() -> None:
    out = variants_json("--model", "suffix_typo", "--model", "omission", "army.mil")
    assert {o["kind"] for o in out} == {"suffix_typo", "omission"}
    assert len(variants_json("--limit", "3", "army.mil", "navy.mil")) == 6
    strong = variants_json("--min-score", "0.9", "army.mil")
    assert strong and all(o["score"] >= 0.9 for o in strong)


def test_every_variant_is_caught_by_check(typoguard_exe: str) -> None:
    out = variants_json("army.mil")
    verdicts = check_many_json(typoguard_exe, "army.mil", [o["variant"] for o in out])
    assert len(verdicts) == len(out)
    assert [v for v in verdicts if v["intended"] != "army.mil"] == []


@pytest.mark.parametrize("domain", ["army.mil", "us.af.mil"])
def test_variants_score_is_the_score_check_gives(typoguard_exe: str, domain: str) -> None:
    out = variants_json(domain)
    verdicts = check_many_json(typoguard_exe, domain, [o["variant"] for o in out])
    mismatched = [
        (o["variant"], o["score"], v["score"])
        for o, v in zip(out, verdicts, strict=True)
        if v["intended"] != domain or abs(o["score"] - v["score"]) > 1e-3
    ]
    assert mismatched == []


def test_text_output_stays_utf8_for_undecodable_input(typoguard_exe: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
    table = subprocess.run(
        [typoguard_exe.encode(), b"check", b"--protect", b"army.mil", b"bob@arm\xffy.mil"],
        capture_output=True,
        timeout=30,
        env=env,
        check=False,
    )
    stream = run(typoguard_exe, ["check", "--protect", "army.mil", "-"], b"bob@arm\xffy.mil\n")
    for proc in (table, stream):
        assert proc.returncode == 1
        text = proc.stdout.decode("utf-8")  # raises if a raw byte leaked through
        assert "invalid" in text and "UTF-8" in text
        assert "\ufffd" in text


# ----------------------------------------------------------------------------- issue 15 items 11 and 12
def test_names_idna_2008_forbids_are_checked_not_called_invalid(typoguard_exe: str) -> None:
    code, out = check_json(
        typoguard_exe,
        [
            "bob@xn--o38h.abrdns.com",  # an emoji name, registered, resolves: deliverable
            "bob@xn--gail-0q8a.com",  # gⅿail.com with U+217F: a look-alike
            "bob@g\u217fail.com",  # the same, as a person typed it
            "bob@ｇｍａｉｌ.com",  # fullwidth letters
            "bob@xn--zz.com",  # punycode that does not decode: no name at all
        ],
    )
    assert code == 1
    got = [(o["action"], o["intended"]) for o in out]
    assert got == [
        ("allow", None),
        ("reject", "gmail.com"),
        ("reject", "gmail.com"),
        ("reject", "gmail.com"),
        ("invalid", None),
    ]
    assert "malformed punycode" in out[4]["error"]


def test_a_protected_list_holding_such_a_name_loads(typoguard_exe: str, tmp_path: Path) -> None:
    """Before, one such line refused the whole file (a 10,000-domain list failed to load)."""
    listed = tmp_path / "protected.txt"
    listed.write_text("army.mil\nxn--o38h.abrdns.com\nxn--rmy-1n4a.mil\ngmail.com\n", "utf-8")
    proc = run(
        typoguard_exe,
        [
            "check",
            "--protect-file",
            str(listed),
            "--format",
            "json",
            "bob@xn--o38h.abrdns.com",
            "bob@army.ml",
        ],
    )
    assert proc.returncode == 1, proc.stderr.decode(errors="replace")
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [o["action"] for o in out] == ["allow", "reject"]
    assert "protected" in out[0]["reason"]


def test_a_protected_list_with_a_name_that_cannot_exist_is_refused_naming_it(
    typoguard_exe: str, tmp_path: Path
) -> None:
    listed = tmp_path / "protected.txt"
    listed.write_text("army.mil\nxn--zz.com\n", "utf-8")
    proc = run(typoguard_exe, ["check", "--protect-file", str(listed), "bob@army.ml"])
    assert proc.returncode == 2
    assert "xn--zz.com" in proc.stderr.decode() and "malformed punycode" in proc.stderr.decode()


def test_a_slip_and_a_swapped_suffix_warns(typoguard_exe: str) -> None:
    proc = run(
        typoguard_exe,
        [
            "check",
            "--protect",
            "yahoo.com",
            "--protect",
            "outlook.com",
            "--format",
            "json",
            "yafoo.net",
            "oudlook.net",
        ],
    )
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [(o["action"], o["intended"]) for o in out] == [("warn", "yahoo.com"), ("warn", "outlook.com")]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [
        ["check", "--protect", "army.mil", "bob@army.ml"],
        ["check", "--protect", "army.mil", "bob@army.mil"],
        ["variants", "army.mil"],
        ["config", "show"],
        ["--help"],
    ],
)
def test_output_on_a_full_disk_is_one_error_line_and_exit_2(typoguard_exe: str, args: list[str]) -> None:
    # Not a traceback, and not exit 0 or 1: for `check`, 1 means "flagged" and 0 "allowed", and a script
    # must not read either from a run whose answer was never written.
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [typoguard_exe, *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, check=False
        )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "Error: write failed: No space left on device\n"


def test_a_line_of_megabytes_on_stdin_is_one_invalid_recipient_cut_to_64_kib(typoguard_exe: str) -> None:
    # A line is read up to 64 KiB and the rest of it skipped: before, the line was gathered 64 KiB at a time
    # by copying all of it again each time (a 200 MB line: minutes of CPU) and echoed whole.
    line = b"bob@" + b"a" * (30 << 20) + b".com\nbob@army.ml\n"
    proc = subprocess.run(
        [typoguard_exe, "check", "--protect", "army.mil", "--format", "json", "-"],
        input=line, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    first, second = (json.loads(x) for x in proc.stdout.splitlines())
    assert first["action"] == "invalid" and first["recipient"].startswith("bob@aaaa")
    assert len(first["recipient"]) <= 64 * 1024
    assert len(proc.stdout) < 300 * 1024
    assert second["recipient"] == "bob@army.ml" and second["action"] == "reject"


def test_check_with_standard_input_closed_is_a_usage_error_not_a_traceback(typoguard_exe: str) -> None:
    # `typoguard check - <&-` (a cron job, a supervisor without stdin) raised AttributeError and exited 1,
    # check's "something flagged".
    done = subprocess.run(
        [typoguard_exe, "check", "--protect", "army.mil", "-"],
        capture_output=True, text=True, timeout=60, check=False, preexec_fn=lambda: os.close(0),
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert "standard input is closed" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--protect", "army.mil", "bob@army.ml"],
        ["check", "--protect", "army.mil", "--format", "json", "bob@army.mil"],
        ["variants", "army.mil"],
        ["audit", "--protect", "army.mil", "--csv", "tests/audit/fixtures/postfix-syslog.log"],
        ["audit", "--protect", "army.mil", "--json", "tests/audit/fixtures/postfix-syslog.log"],
        ["audit", "--protect", "army.mil", "tests/audit/fixtures/postfix-syslog.log"],
    ],
)
def test_a_closed_standard_output_is_one_error_line_and_exit_2(typoguard_exe: str, args: list[str]) -> None:
    # `typoguard ... >&-`: check's table was dropped with exit 0 ("nothing flagged", the answer unwritten),
    # audit --csv raised TypeError and exited 1 ("mail to look-alikes found").
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [typoguard_exe, *args],
        capture_output=False, stderr=subprocess.PIPE, text=True, timeout=60, check=False, cwd=root,
        preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert "standard output is closed" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_closed_standard_error_drops_the_warnings_not_the_answer(typoguard_exe: str) -> None:
    root = Path(__file__).resolve().parent.parent
    args = ["audit", "--protect", "army.mil", "--csv", "tests/audit/fixtures/postfix-syslog.log"]
    done = subprocess.run(
        [typoguard_exe, *args], capture_output=True, text=True, timeout=60, check=False, cwd=root,
        preexec_fn=lambda: os.close(2),
    )  # fmt: skip
    assert done.returncode == 1  # mail to look-alikes found, as with 2>/dev/null
    assert "bob@army.ml" in done.stdout
