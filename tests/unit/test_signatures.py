"""Artifact signatures with real keys (ssh-keygen, gpg into a temporary GNUPGHOME): a good one deploys and names
its signer in the record; a tampered, unsigned, wrongly namespaced or unknown-key one is refused, exit 2, before
the project, the lock or any host."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_onboarding import DEPLOY_SPEC, runs  # noqa: F401  # runs: deploys stop where site.yml would run

from rollwright.cli import main
from rollwright.spec.loader import SpecError, load_spec

# the --artifact tests' spec, its targets without a webhook or a promotion gate, production requiring a signature
SPEC = DEPLOY_SPEC.replace("release:", "{signature}release:").split("targets:")[0] + """targets:
  staging: {{inventory: hosts.yml}}
  production: {{inventory: hosts.yml, require_signature: true}}
"""
SSH = "  signature: {method: ssh, allowed_signers: keys/allowed_signers}\n"
GPG = "  signature: {method: gpg, keyring: keys/release.gpg}\n"
BUILD = b"the release tarball"


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return path


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A spec pinned to dist/hello-1.0.0.tar.gz, an inventory, a release key trusted as release@example.com, and
    a stranger's key nobody trusts."""
    (tmp_path / "dist").mkdir()
    (tmp_path / "keys").mkdir()
    (tmp_path / "dist/hello-1.0.0.tar.gz").write_bytes(BUILD)
    (tmp_path / "hosts.yml").write_text("all:\n  children:\n    app:\n      hosts:\n        app1: {}\n")
    key = _keygen(tmp_path / "keys/release")
    _keygen(tmp_path / "keys/stranger")
    (tmp_path / "keys/allowed_signers").write_text(
        f'release@example.com namespaces="rollwright" {key.with_suffix(".pub").read_text()}')
    _spec(tmp_path, SSH)
    return tmp_path


def _spec(app: Path, signature: str = "", data: bytes = BUILD) -> Path:
    spec = app / "rollwright.yml"
    spec.write_text(SPEC.format(sha=hashlib.sha256(data).hexdigest(), signature=signature))
    return spec


def _sign(app: Path, key: str = "release", namespace: str = "rollwright") -> None:
    assert main(["sign", str(app / "dist/hello-1.0.0.tar.gz"), "--key", str(app / "keys" / key),
                 "--namespace", namespace, "--force"]) == 0


def _deploy(app: Path, target: str = "staging", *more: str) -> int:
    return main(["deploy", "-f", str(app / "rollwright.yml"), "-t", target, "--no-color", *more])


def test_a_good_ssh_signature_deploys_and_the_record_names_its_signer(
        app: Path, runs: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    _sign(app)
    assert "wrote" in capsys.readouterr().out
    assert _deploy(app, "production") == 0
    out = capsys.readouterr().out
    assert "signature: good ssh signature by release@example.com (SHA256:" in out
    assert main(["history", "-f", str(app / "rollwright.yml"), "--json"]) == 0
    record_id = json.loads(capsys.readouterr().out.splitlines()[0])["id"]
    assert main(["show", record_id, "-f", str(app / "rollwright.yml"), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["provenance"]
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(app / "keys/release.pub")], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
    assert found["signature"] == {"method": "ssh", "signer": "release@example.com", "fingerprint": fingerprint,
                                  "file": str(app / "dist/hello-1.0.0.tar.gz.sig")}
    assert found["artifact_sha256"] == hashlib.sha256(BUILD).hexdigest()
    assert found["source"] == str((app / "dist/hello-1.0.0.tar.gz").resolve())
    assert found["spec_sha256"] == hashlib.sha256((app / "rollwright.yml").read_bytes()).hexdigest()
    assert found["project_sha256"].startswith(runs[-1]["project"].name) and len(found["project_sha256"]) == 64
    assert found["rollwright_version"] not in ("", "unknown")
    assert main(["show", record_id, "-f", str(app / "rollwright.yml")]) == 0
    shown = capsys.readouterr().out
    assert "## Provenance" in shown and f"- signed by: ssh: release@example.com ({fingerprint})" in shown
    assert f"- generated project sha256: `{found['project_sha256']}`" in shown


def _state(app: Path) -> list[Path]:
    return sorted((app / ".rollwright").rglob("*"))


def _refused(app: Path, capsys: pytest.CaptureFixture[str], target: str = "staging") -> str:
    """A deploy refused with exit 2 before anything: no new project, lock, record or history row."""
    before = _state(app)
    assert _deploy(app, target) == 2
    err = capsys.readouterr().err
    assert f"deploy of hello 1.0.0 to {target} refused before any change" in err
    assert _state(app) == before
    return err


def test_refusals_say_why_and_touch_nothing(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "missing signature: " + str(app / "dist/hello-1.0.0.tar.gz.sig") in _refused(app, capsys)
    _sign(app, namespace="other")
    assert "wrong namespace: the signature was not made for namespace 'rollwright'" in _refused(app, capsys)
    _sign(app, key="stranger")
    stranger = subprocess.run(["ssh-keygen", "-l", "-f", str(app / "keys/stranger.pub")], capture_output=True,
                              text=True, check=True).stdout.split()[1]
    err = _refused(app, capsys)
    assert "unknown key: " in err and stranger in err and "keys/allowed_signers does not hold" in err
    _sign(app)
    (app / "dist/hello-1.0.0.tar.gz").write_bytes(b"tampered")
    assert "its sha256 is " in _refused(app, capsys)  # the pin no longer matches
    _spec(app, SSH, b"tampered")  # re-pinned to the tampered bytes: the signature still refuses them
    assert "bad signature: the artifact is not what was signed" in _refused(app, capsys)
    _spec(app, "")
    (app / "dist/hello-1.0.0.tar.gz").write_bytes(BUILD)
    err = _refused(app, capsys, "production")
    assert "target production requires a signed artifact (require_signature)" in err
    assert main(["generate", "-f", str(app / "rollwright.yml"), "-t", "production", "-o", str(app / "out")]) == 2
    assert "generate refused: target production requires a signed artifact" in capsys.readouterr().err
    assert not (app / "out").exists()


def test_signers_narrow_who_may_sign(app: Path, runs: list[dict[str, Any]],  # noqa: F811
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _sign(app)
    _spec(app, "  signature: {method: ssh, allowed_signers: keys/allowed_signers, signers: [ops@example.com]}\n")
    assert "signed by release@example.com (ED25519 key SHA256:" in _refused(app, capsys)
    _spec(app, "  signature: {method: ssh, allowed_signers: keys/allowed_signers, signers: [release@example.com]}\n")
    assert _deploy(app) == 0


def test_artifact_option_checks_the_signature_beside_that_build(app: Path, runs: list[dict[str, Any]],  # noqa: F811
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    build = app / "dist/hello-1.4.0.tar.gz"
    build.write_bytes(b"new build")
    assert _deploy(app, "staging", "--artifact", str(build)) == 2
    assert f"missing signature: {build}.sig does not exist" in capsys.readouterr().err
    assert main(["sign", str(build), "--key", str(app / "keys/release")]) == 0
    assert main(["sign", str(build), "--key", str(app / "keys/release")]) == 2  # never replaced unasked
    assert "already exists: --force replaces it" in capsys.readouterr().err
    assert _deploy(app, "production", "--artifact", str(build)) == 0
    assert runs[-1]["version"] == "1.4.0"


def test_a_build_file_names_its_signature(app: Path, runs: list[dict[str, Any]]) -> None:  # noqa: F811
    (app / "rollwright.yml").write_text(SPEC.format(sha="", signature="").replace(
        '  path: dist/hello-1.0.0.tar.gz\n  version: "1.0.0"\n  sha256: ""\n',
        "  from: dist/build.json\n" + SSH))
    (app / "dist/signed").mkdir()
    (app / "dist/build.json").write_text(json.dumps({"path": "dist/hello-1.0.0.tar.gz", "version": "1.0.0",
                                                     "sha256": hashlib.sha256(BUILD).hexdigest(),
                                                     "signature": "dist/signed/hello.sig"}))
    artifact = load_spec(app / "rollwright.yml").spec.artifact
    assert artifact is not None and artifact.signature is not None
    assert artifact.signature.path == "dist/signed/hello.sig"
    _sign(app)
    (app / "dist/hello-1.0.0.tar.gz.sig").rename(app / "dist/signed/hello.sig")
    assert _deploy(app, "production") == 0


@pytest.fixture
def gnupg(app: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A release key in a GNUPGHOME of its own, exported to keys/release.gpg; returns its fingerprint."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    for uid in ("Release Bot <release@example.com>", "Stranger <stranger@example.com>"):
        subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign",
                        "0"], check=True, capture_output=True)
    listing = subprocess.run(["gpg", "--with-colons", "--list-keys", "release@example.com"], capture_output=True,
                             text=True, check=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    subprocess.run(["gpg", "--batch", "--export", "-o", str(app / "keys/release.gpg"), "release@example.com"],
                   check=True)
    _spec(app, GPG)
    return fingerprint


def _gpg_sign(app: Path, uid: str = "release@example.com", armor: bool = False) -> None:
    tarball = app / "dist/hello-1.0.0.tar.gz"
    out = tarball.with_name(tarball.name + (".asc" if armor else ".sig"))
    subprocess.run(["gpg", "--batch", "--yes", "--local-user", uid, *(["--armor"] if armor else []),
                    "--detach-sign", "-o", str(out), str(tarball)], check=True, capture_output=True)


def test_gpg_signatures(app: Path, gnupg: str, runs: list[dict[str, Any]],  # noqa: F811
                        capsys: pytest.CaptureFixture[str]) -> None:
    _gpg_sign(app, "stranger@example.com")
    assert "unknown key: " in (err := _refused(app, capsys)) and "keys/release.gpg does not hold" in err
    _gpg_sign(app, armor=True)  # the .asc beside the tarball comes before the .sig
    assert _deploy(app, "production") == 0
    assert f"good gpg signature by Release Bot <release@example.com> ({gnupg})" in capsys.readouterr().out
    _spec(app, GPG.replace("}", ", signers: ['" + "0" * 40 + "']}"))
    assert "not one of artifact.signature.signers" in _refused(app, capsys)
    _spec(app, GPG.replace("}", f", signers: [{gnupg.lower()}]}}"))
    assert _deploy(app) == 0
    _spec(app, GPG, b"changed")
    (app / "dist/hello-1.0.0.tar.gz").write_bytes(b"changed")
    assert "bad signature: the artifact is not what Release Bot <release@example.com> signed" in _refused(app, capsys)


@pytest.mark.parametrize(("signature", "message"), [
    ("{method: ssh}", "method ssh needs 'allowed_signers'"),
    ("{method: gpg, keyring: k.gpg, namespace: x}", "'allowed_signers' and 'namespace' are for method ssh"),
    ("{method: ssh, allowed_signers: a, keyring: k.gpg}", "'keyring' is for method gpg"),
    ("{method: gpg, keyring: k.gpg, signers: [alice]}", "each of 'signers' is a key's fingerprint"),
    ("{method: ssh, allowed_signers: ../a}", "climbs out with '..'"),
    ("{method: pgp, keyring: k.gpg}", "expected one of 'ssh' or 'gpg'"),
])
def test_a_signature_section_is_checked_like_the_rest_of_the_spec(app: Path, signature: str, message: str) -> None:
    _spec(app, f"  signature: {signature}\n")
    with pytest.raises(SpecError, match=r"rollwright\.yml:6:") as caught:
        load_spec(app / "rollwright.yml")
    assert message in str(caught.value) and "artifact.signature" in str(caught.value)


def test_a_url_artifact_cannot_be_signed(app: Path) -> None:
    spec = _spec(app, SSH)
    spec.write_text(spec.read_text().replace("path: dist/hello-1.0.0.tar.gz", "url: https://example.com/h.tgz"))
    with pytest.raises(SpecError, match="a 'url' artifact is fetched by each host, never by the control node"):
        load_spec(spec)


def test_a_missing_trust_file_names_its_field(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sign(app)
    os.remove(app / "keys/allowed_signers")
    assert _deploy(app) == 2
    assert "rollwright.yml:6:" in (err := capsys.readouterr().err) and "artifact.signature.allowed_signers" in err


def test_target_flags_require_signature(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(app / "rollwright.yml")
    assert main(["target", "add", "qa", "-f", spec, "--inventory", "hosts.yml", "--require-signature"]) == 0
    assert load_spec(spec).spec.targets["qa"].require_signature
    assert main(["target", "update", "qa", "-f", spec, "--no-require-signature"]) == 0
    assert not load_spec(spec).spec.targets["qa"].require_signature
    assert main(["target", "list", "-f", spec]) == 0
    assert "require-signature" in capsys.readouterr().out  # production's flag


def test_a_tool_s_migration_status_stages_nothing_unverified(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`migrations status` with a tool of its own stages the spec's release on an app host: checked first too."""
    spec = app / "rollwright.yml"
    spec.write_text(spec.read_text() + "database: {name: hello, migrations: {tool: alembic}}\n")
    assert main(["migrations", "status", "-f", str(spec), "-t", "staging"]) == 2
    err = capsys.readouterr().err
    assert "migrations status refused before any host was contacted: " in err and "missing signature" in err
    assert not (app / ".rollwright").exists()
