"""`rollwright env`: a target's plain values in group_vars (round-trip), secrets in one ansible-vault file."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from rollwright.cli import main
from rollwright.targetenv import PLAIN_FILE, SECRETS_FILE

SPEC = "app: demo\ntargets:\n  staging: {inventory: inv}\n  single: {inventory: single.yml}\n"
SECRET = "p@ss {{ word }} " + "x" * 12


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yml").write_text("all:\n  hosts:\n    app1: {}\n")
    (tmp_path / "single.yml").write_text("all:\n  hosts:\n    app1: {}\n")
    (tmp_path / "rollwright.yml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROLLWRIGHT_VAULT_PASSWORD", "correct horse")
    monkeypatch.delenv("ROLLWRIGHT_VAULT_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    return tmp_path


def env(*args: str, stdin: str = "") -> int:
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(["env", *args, "-t", "staging"])
    finally:
        sys.stdin = saved


def test_plain_and_secret_values_are_stored_apart_and_listed_masked(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert env("set", "LOG_LEVEL", "debug") == 0
    assert env("set", "API_TOKEN", "--secret", stdin=SECRET + "\n") == 0
    vault = (folder / "inv" / SECRETS_FILE).read_bytes()
    assert vault.startswith(b"$ANSIBLE_VAULT;1.1;AES256") and SECRET.encode() not in vault
    assert (folder / "inv" / SECRETS_FILE).stat().st_mode & 0o777 == 0o600
    assert "LOG_LEVEL: \"debug\"" in (folder / "inv" / PLAIN_FILE).read_text()
    capsys.readouterr()
    assert env("list") == 0
    assert capsys.readouterr().out.splitlines() == ["API_TOKEN=<secret>", "LOG_LEVEL=debug"]
    assert env("list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "API_TOKEN", "secret": True, "value": None},
                                                   {"name": "LOG_LEVEL", "secret": False, "value": "debug"}]
    assert env("get", "API_TOKEN") == 2
    assert "add --reveal" in capsys.readouterr().err
    assert env("get", "API_TOKEN", "--reveal") == 0
    assert capsys.readouterr().out == SECRET + "\n"


def test_a_secret_on_the_command_line_is_refused_and_nothing_written(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert env("set", "API_TOKEN", "hunter2", "--secret") == 2
    assert "never taken from the command line" in capsys.readouterr().err
    assert not (folder / "inv" / "group_vars").exists()


def test_a_value_moves_between_plain_and_secret_and_comments_survive(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = folder / "inv" / PLAIN_FILE
    plain.parent.mkdir(parents=True)
    plain.write_text("# kept by hand\nrollwright_env:\n"
                     "  REGION: !unsafe \"eu-1\"  # the main one\n  MODE: !unsafe \"a\"\n")
    assert env("set", "MODE", "--secret", stdin="b") == 0
    assert env("set", "NEW", "c") == 0
    text = plain.read_text()
    assert text.startswith("# kept by hand\n") and "# the main one" in text and "MODE" not in text
    capsys.readouterr()
    env("list")
    assert capsys.readouterr().out.splitlines() == ["MODE=<secret>", "NEW=c", "REGION=eu-1"]
    assert env("set", "MODE", "plain-again") == 0
    assert not (folder / "inv" / SECRETS_FILE).exists()  # its last secret moved out
    assert env("delete", "NEW") == 0 and env("delete", "NEW") == 2
    env("list")
    assert capsys.readouterr().out.splitlines()[-2:] == ["MODE=plain-again", "REGION=eu-1"]


def test_wrong_or_missing_vault_password_is_a_clear_refusal(
        folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert env("set", "API_TOKEN", "--secret", stdin=SECRET) == 0
    before = (folder / "inv" / SECRETS_FILE).read_bytes()
    monkeypatch.setenv("ROLLWRIGHT_VAULT_PASSWORD", "wrong")
    assert env("set", "OTHER", "--secret", stdin="x") == 2
    assert "the vault password does not open its secrets" in capsys.readouterr().err
    monkeypatch.delenv("ROLLWRIGHT_VAULT_PASSWORD")
    assert env("list") == 2
    assert "ROLLWRIGHT_VAULT_PASSWORD_FILE" in capsys.readouterr().err
    password_file = folder / "vault-pass"
    password_file.write_text("correct horse\n")
    monkeypatch.setenv("ROLLWRIGHT_VAULT_PASSWORD_FILE", str(password_file))
    assert env("get", "API_TOKEN", "--reveal") == 0
    assert capsys.readouterr().out == SECRET + "\n"
    assert (folder / "inv" / SECRETS_FILE).read_bytes() == before


def test_an_inventory_file_target_and_bad_names_are_refused(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env", "set", "A", "1", "-t", "single"]) == 2
    assert "make the inventory a folder" in capsys.readouterr().err
    assert env("set", "1BAD", "x") == 2
    assert "is not an environment variable name" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["true", "1", "", "null", "{{ lookup('pipe', 'id') }}", "{% raw %}"])
def test_a_value_reaches_ansible_as_the_same_string(folder: Path, value: str) -> None:
    """As Ansible reads group_vars (trusted as templates unless `!unsafe`): the same text, never a boolean,
    a number, None, and a value with a `{` never a template."""
    from ansible.module_utils._internal._datatag import AnsibleTagHelper
    from ansible.parsing.dataloader import DataLoader

    assert env("set", "VALUE", value) == 0
    loaded = DataLoader().load_from_file(str(folder / "inv" / PLAIN_FILE), cache="none",
                                         trusted_as_template=True)["rollwright_env"]["VALUE"]
    assert loaded == value and isinstance(loaded, str)
    trusted = "TrustedAsTemplate" in {type(tag).__name__ for tag in AnsibleTagHelper.tags(loaded)}
    assert not trusted or "{" not in value
