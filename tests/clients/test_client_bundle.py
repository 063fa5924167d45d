"""``typoguard export --format client-bundle`` and what a client does with the file: the envelope, the
hash, the schema, the size, and the JavaScript detector's command-line contract (streaming, exit codes,
refusals)."""

from __future__ import annotations

import json
import random
import selectors
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from rapidfuzz.distance import OSA

from typoguard import resources
from typoguard.config import Config, ProtectConfig
from typoguard.errors import ConfigError
from typoguard.exposure import client_bundle
from typoguard.guard import Guard

Export = Callable[[Sequence[str]], Path]
TWENTY_SEED = 20
MAX_BUNDLE_BYTES = 2 * 1024 * 1024  # issue 20: <= 2 MB for 20 protected domains


def twenty_domains() -> list[str]:
    """Twenty real mail domains (a fixed sample of the shipped legitimate-domain list)."""
    return random.Random(TWENTY_SEED).sample(sorted(resources.legitimate_domains()), 20)


def run(
    args: Sequence[str], stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), input=stdin, capture_output=True, env=env, timeout=120, check=False)


# ============================================================================= the file
def test_export_writes_a_bundle_that_verifies_and_the_same_bytes_each_time(
    typoguard_exe: str, child_env: dict[str, str], export_bundle: Export
) -> None:
    path = export_bundle(["--protect", "army.mil", "--protect", "gmail.com"])
    text = path.read_text("utf-8")
    again = run([typoguard_exe, "export", "--format", "client-bundle", "--protect", "army.mil", "--protect",
                 "gmail.com"], env=child_env)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode("utf-8") == text, "same configuration, same bytes (a cron job can compare)"
    doc = client_bundle.verify(text)
    assert list(doc) == ["format", "schema", "sha256", "content"]
    assert (doc["format"], doc["schema"]) == ("typoguard-client-bundle", 1)
    content = doc["content"]
    assert [row[0] for row in content["protected"]] == ["army.mil", "gmail.com"]
    assert content["policy"] == {"reject_at": 0.9, "hold_at": 0.7, "warn_at": 0.4, "mode": "enforce"}
    assert "ymail.com" in content["legitimate"] and "gmail.com" not in content["legitimate"]
    assert content["replies"]["reject_template"].startswith("Not sent: {domain} is not {intended}.")


def test_bundle_carries_the_configuration(export_bundle: Export, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        '[protect]\ndomains = ["army.mil"]\ntrusted = ["army.com"]\n[policy]\nreject_at = 0.8\n'
        'hold_at = 0.6\nwarn_at = 0.3\nhelp_text = "Questions: helpdesk@army.mil"\n',
        "utf-8",
    )
    content = client_bundle.verify(export_bundle(["--config", str(config)]).read_text("utf-8"))["content"]
    assert content["trusted"] == ["army.com"]
    assert (content["policy"]["reject_at"], content["policy"]["warn_at"]) == (0.8, 0.3)
    assert content["replies"]["help_text"] == "Questions: helpdesk@army.mil"


def test_a_bundle_for_twenty_domains_is_under_two_megabytes(export_bundle: Export, tmp_path: Path) -> None:
    listed = tmp_path / "twenty.txt"
    listed.write_text("\n".join(twenty_domains()) + "\n", "utf-8")
    size = export_bundle(["--protect-file", str(listed)]).stat().st_size
    print(f"\nbundle for 20 protected domains: {size:,} bytes")
    assert size <= MAX_BUNDLE_BYTES


def test_export_refuses_block_list_options_with_a_client_bundle(
    typoguard_exe: str, child_env: dict[str, str]
) -> None:
    args = ["export", "--format", "client-bundle", "--protect", "army.mil", "--min-score", "0.5"]
    proc = run([typoguard_exe, *args], env=child_env)
    assert proc.returncode == 2
    assert b"client-bundle carries the whole index" in proc.stderr


def test_the_words_left_out_cannot_damp_a_match() -> None:
    """The bundle carries only the common words that can damp a match for its protected domains: a word left
    out is more than two edits from every ending of every protected name (as typed and as read)."""
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=tuple(twenty_domains()))))
    kept = set(client_bundle.build_content(guard)["common_words"].split(" "))
    skeleton = resources.domain_skeletons().of
    endings = {
        t[i:] for p in guard.index.protected for t in (p.core, skeleton(p.ucore)) for i in range(len(t))
    }
    left_out = sorted(resources.common_words() - kept)
    assert kept and left_out
    for word in random.Random(1).sample(left_out, 3000):
        for form in {word, skeleton(word)}:
            near = [e for e in endings if OSA.distance(form, e, score_cutoff=2) <= 2]
            assert not near, f"{word!r} was left out but is within two edits of {near}"


# ============================================================================= the JavaScript detector
def js(node: str, script: str) -> subprocess.CompletedProcess[bytes]:
    return run([node, "--input-type=module", "-e", script])


@pytest.fixture(scope="module")
def detector_dir(detector_cli: Path) -> Path:
    return detector_cli.parent


def test_check_returns_the_json_of_typoguard_check(
    node: str, detector_dir: Path, export_bundle: Export
) -> None:
    bundle = export_bundle(["--protect", "army.mil"])
    script = f"""
        import {{ readFileSync }} from 'node:fs';
        import {{ loadBundle, check }} from {json.dumps(str(detector_dir / "detector.mjs"))};
        let before = null;
        try {{ check('x@army.ml'); }} catch (err) {{ before = err.message; }}
        const d = loadBundle(readFileSync({json.dumps(str(bundle))}, 'utf8'));
        console.log(JSON.stringify({{ before, result: check('bob@army.ml'), info: d.info }}));
    """
    proc = js(node, script)
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    assert "no bundle loaded" in out["before"]
    server = Guard.from_config(Config(protect=ProtectConfig(domains=("army.mil",)))).check("bob@army.ml")
    assert out["result"] == server.to_dict()
    assert (out["result"]["action"], out["result"]["intended"]) == ("reject", "army.mil")
    assert out["info"]["protected"] == ["army.mil"]
    assert out["info"]["sha256"] == json.loads(bundle.read_text("utf-8"))["sha256"]


def test_a_modified_bundle_is_refused(
    node: str, detector_cli: Path, export_bundle: Export, tmp_path: Path
) -> None:
    text = export_bundle(["--protect", "army.mil"]).read_text("utf-8")
    modified = tmp_path / "modified.json"
    modified.write_text(text.replace('"reject_at":0.9', '"reject_at":0.99'), "utf-8")
    proc = run([node, str(detector_cli), str(modified)], b"bob@army.ml\n")
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"does not match its sha256" in proc.stderr
    with pytest.raises(ConfigError, match="sha256"):
        client_bundle.verify(modified.read_text("utf-8"))


def test_a_bundle_of_another_schema_is_refused(
    node: str, detector_cli: Path, export_bundle: Export, tmp_path: Path
) -> None:
    text = export_bundle(["--protect", "army.mil"]).read_text("utf-8")
    newer = tmp_path / "newer.json"
    newer.write_text(text.replace('"schema":1,', '"schema":2,', 1), "utf-8")
    proc = run([node, str(detector_cli), str(newer)], b"bob@army.ml\n")
    assert proc.returncode == 2
    assert b"bundle schema 2, this detector reads schema 1" in proc.stderr


@pytest.mark.parametrize(
    ("lines", "code"),
    [([b"bob@army.mil", b"example.org"], 0), ([b"bob@army.mil", b"bob@army.ml"], 1), ([b"bob@"], 1)],
)
def test_exit_codes_are_those_of_typoguard_check(
    node: str, detector_cli: Path, export_bundle: Export, lines: list[bytes], code: int
) -> None:
    proc = run(
        [node, str(detector_cli), str(export_bundle(["--protect", "army.mil"]))], b"\n".join(lines) + b"\n"
    )
    assert proc.returncode == code
    assert len(proc.stdout.splitlines()) == len(lines)


def test_usage_errors_exit_2(node: str, detector_cli: Path, tmp_path: Path) -> None:
    assert run([node, str(detector_cli)]).returncode == 2
    missing = run([node, str(detector_cli), str(tmp_path / "nothing.json")])
    assert missing.returncode == 2 and b"nothing.json" in missing.stderr
    (tmp_path / "junk.json").write_text("{not json", "utf-8")
    assert run([node, str(detector_cli), str(tmp_path / "junk.json")]).returncode == 2


def test_each_line_is_answered_as_it_arrives(node: str, detector_cli: Path, export_bundle: Export) -> None:
    """A tool may write one recipient and wait for its answer before writing the next (no EOF needed)."""
    bundle = export_bundle(["--protect", "army.mil"])
    with subprocess.Popen(
        [node, str(detector_cli), str(bundle)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        answers = []
        for line in (b"bob@army.ml\n", b"bob@army.mil\r\n", b"  navy.ml  \n"):
            proc.stdin.write(line)
            proc.stdin.flush()
            assert sel.select(timeout=10), f"no answer to {line!r} within 10 s"
            answers.append(json.loads(proc.stdout.readline()))
        proc.stdin.close()
        assert proc.wait(timeout=10) == 1
    assert [(a["recipient"], a["action"]) for a in answers] == [
        ("bob@army.ml", "reject"), ("bob@army.mil", "allow"), ("navy.ml", "allow"),
    ]  # fmt: skip
