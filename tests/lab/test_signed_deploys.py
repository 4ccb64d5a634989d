"""Signed artifacts on real hosts: a target that requires signatures refuses a tampered artifact, an unsigned one
and one signed by an unknown key before any host is contacted (no SSH login on any host, no release, no lock,
no audit line, no record), and deploys a well-signed one, whose record names its signer.

The refusals need no deploy: they run first, against the fleet as earlier modules left it; one deploy follows.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from fleets import APP_HOSTS, Fleet

from rollwright.lab.fleet import Lab

HOSTS = ["lb1", "db1", *APP_HOSTS]
# what a run of rollwright would leave on a host it reached: an SSH login, a release, the lock, an audit line
TRACES = ("journalctl _COMM=sshd --no-pager -q | grep -c 'Accepted publickey' || true; "
          "ls -l --time-style=full-iso /srv/hello/releases /var/lib/rollwright/locks 2>/dev/null || true; "
          "readlink /srv/hello/current || true; wc -l < /var/log/rollwright/audit.log 2>/dev/null || true")


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    fleet = Fleet.beside(lab, tmp_path_factory.mktemp("signatures"))
    keys = fleet.folder / "keys"
    keys.mkdir()
    release, _ = _keygen(keys / "release"), _keygen(keys / "stranger")
    (keys / "allowed_signers").write_text(f'release@example.com namespaces="rollwright" '
                                          f'{release.with_suffix(".pub").read_text()}')
    return fleet


def _signed_spec(fleet: Fleet, version: str) -> tuple[Path, Path]:
    """The sample app's spec for `version`, its artifact signed-for (ssh) and the lab target requiring it."""
    spec = fleet.spec(version)
    data = yaml.safe_load(spec.read_text())
    data["artifact"]["signature"] = {"method": "ssh", "allowed_signers": "keys/allowed_signers"}
    data["targets"]["lab"]["require_signature"] = True
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec, fleet.folder / data["artifact"]["path"]


def _sign(fleet: Fleet, tarball: Path, key: str = "release") -> None:
    signed = fleet.rollwright("sign", str(tarball), "--key", str(fleet.folder / "keys" / key), "--force")
    assert signed.returncode == 0, signed.stdout + signed.stderr


def _traces(fleet: Fleet) -> dict[str, list[str]]:
    """Each host's traces, less the one SSH login this look itself makes."""
    found = {host: fleet.lab.run(host, TRACES).stdout.splitlines() for host in HOSTS}
    return {host: [str(int(lines[0]) - 1), *lines[1:]] for host, lines in found.items()}


def _refused(fleet: Fleet, spec: Path, reason: str) -> None:
    before = _traces(fleet)
    proc = fleet.deploy(spec, "--no-color")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused before any change" in proc.stderr and reason in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _traces(fleet) == {host: [str(int(lines[0]) + 1), *lines[1:]] for host, lines in before.items()}
    assert not (fleet.folder / ".rollwright").exists()  # no project, record, journal or history either


def test_tampered_unsigned_and_unknown_key_are_refused_before_any_host(fleet: Fleet) -> None:
    spec, tarball = _signed_spec(fleet, "1.0.0")
    _sign(fleet, tarball)
    good = tarball.read_bytes()
    tarball.write_bytes(good + b"\0")  # tampered after signing, and re-pinned to the tampered bytes
    spec.write_text(spec.read_text().replace(hashlib.sha256(good).hexdigest(),
                                             hashlib.sha256(good + b"\0").hexdigest()))
    _refused(fleet, spec, "bad signature: the artifact is not what was signed")

    spec, tarball = _signed_spec(fleet, "1.0.0")  # rebuilt: the same bytes as signed
    data = yaml.safe_load(spec.read_text())
    del data["artifact"]["signature"]
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    _refused(fleet, spec, "target lab requires a signed artifact (require_signature)")

    spec, tarball = _signed_spec(fleet, "1.0.0")
    _sign(fleet, tarball, key="stranger")
    _refused(fleet, spec, "unknown key: ")


def test_a_signed_artifact_deploys_and_its_record_names_the_signer(fleet: Fleet) -> None:
    spec, tarball = _signed_spec(fleet, "1.0.0")
    _sign(fleet, tarball)
    proc = fleet.deploy(spec, "--no-color")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "signature: good ssh signature by release@example.com" in proc.stdout
    assert set(fleet.versions(spec).values()) == {"1.0.0"}
    history = fleet.rollwright("history", "-f", str(spec), "--json")
    record_id = json.loads(history.stdout.splitlines()[0])["id"]
    shown = fleet.rollwright("show", record_id, "-f", str(spec))
    assert "## Provenance" in shown.stdout and "- signed by: ssh: release@example.com (SHA256:" in shown.stdout
    assert f"- artifact sha256: `{hashlib.sha256(tarball.read_bytes()).hexdigest()}`" in shown.stdout
