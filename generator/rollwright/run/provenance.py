"""Artifact signatures and provenance, on the control node.

A signed artifact is checked here, before the lock and before any host is contacted: its bytes are read once,
their sha256 must be the pinned one, and the same bytes must carry a good signature by a trusted key (OpenSSH:
`ssh-keygen -Y`, an allowed-signers file and a namespace; OpenPGP: `gpgv` with a keyring). No network, no shell:
every tool runs as an argv list with the artifact on its stdin. The signer found goes into the deploy record's
provenance, beside the spec's and the generated project's digests and rollwright's own version.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rollwright.errors import BadInput
from rollwright.spec.loader import LoadedSpec, SpecError
from rollwright.spec.model import Signature, Target

TOOL_SECONDS = 120
PACKAGES = {"ssh-keygen": "openssh-client", "gpgv": "gpgv"}
# gpgv's status lines that refuse a signature whatever else it says
GPG_REFUSALS = {"BADSIG": "bad signature: the artifact is not what {who} signed (changed after signing?)",
                "EXPKEYSIG": "the signing key {who} has expired", "REVKEYSIG": "the signing key {who} was revoked",
                "EXPSIG": "the signature has expired"}


class Unverified(BadInput):
    """A signature that does not hold (or is missing where one is required): the reason, for the refusal."""


@dataclass(frozen=True)
class Signed:
    """Who signed the artifact, as the verifying tool said it."""

    method: str  # ssh or gpg
    signer: str  # the ssh principal, or the gpg key's user id
    fingerprint: str  # SHA256:... (ssh) or the primary key's 40 hex (gpg)
    file: str  # the signature file checked


def check_artifact(loaded: LoadedSpec, target_name: str, target: Target) -> Signed | None:
    """The artifact's signature verified (None when the spec signs nothing and the target does not ask for it);
    Unverified with the reason otherwise. Reads the tarball once: the signature is checked over the very bytes
    whose sha256 is compared with the pinned one."""
    artifact = loaded.spec.artifact
    if artifact is None:
        return None
    signature = artifact.signature
    if signature is None:
        if target.require_signature:
            raise Unverified(f"target {target_name} requires a signed artifact (require_signature) and "
                             f"{loaded.path} gives artifact.signature none: sign the tarball (`rollwright sign`) "
                             "and say how to check it")
        return None
    assert artifact.path is not None  # the model refuses a signed url artifact
    tarball = loaded.base_dir / artifact.path
    try:
        data = tarball.read_bytes()
    except OSError as exc:
        raise Unverified(f"artifact {tarball}: cannot read it: {exc.strerror or exc}") from None
    found = hashlib.sha256(data).hexdigest()
    if found != artifact.sha256:
        raise Unverified(f"artifact {tarball}: its sha256 is {found}, not the pinned {artifact.sha256}: the file "
                         "changed after it was pinned")
    sig = signature_file(loaded, signature)
    if not sig.is_file():
        raise Unverified(f"artifact {tarball}: missing signature: {sig} does not exist (sign it with `rollwright "
                         f"sign {tarball} --key KEY`, or set artifact.signature.path)")
    trusted = _trust_file(loaded, signature)
    if signature.method == "ssh":
        return _ssh_signer(data, sig, trusted, signature)
    return _gpg_signer(data, sig, trusted, signature)


def signature_file(loaded: LoadedSpec, signature: Signature) -> Path:
    """The signature's own path, else the one beside the tarball (gpg: `.asc` when there is one, else `.sig`)."""
    if signature.path:
        return loaded.base_dir / signature.path
    tarball = loaded.base_dir / str(loaded.spec.artifact.path if loaded.spec.artifact else "")
    armored = tarball.with_name(tarball.name + ".asc")
    return armored if signature.method == "gpg" and armored.is_file() else tarball.with_name(tarball.name + ".sig")


def _trust_file(loaded: LoadedSpec, signature: Signature) -> Path:
    field = "allowed_signers" if signature.method == "ssh" else "keyring"
    relative = signature.allowed_signers or signature.keyring or ""
    path = loaded.base_dir / relative
    if not path.is_file():
        raise SpecError([loaded.issue(("artifact", "signature", field), f"{path} does not exist: it says who may "
                                      "sign the artifact")])
    return path


def _run(argv: list[str], data: bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(argv, input=data, capture_output=True, timeout=TOOL_SECONDS, env=env, check=False)
    except FileNotFoundError:
        raise BadInput(f"{argv[0]} is not installed on this control node (Debian package {PACKAGES[argv[0]]}): it "
                       "checks the artifact's signature") from None
    except subprocess.TimeoutExpired:
        raise BadInput(f"{argv[0]} did not finish checking the signature in {TOOL_SECONDS} s") from None
    return subprocess.CompletedProcess(argv, done.returncode, done.stdout.decode(errors="replace"),
                                       done.stderr.decode(errors="replace"))


def _said(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"


def _ssh_signer(data: bytes, sig: Path, allowed: Path, signature: Signature) -> Signed:
    """check-novalidate tells a bad signature or another namespace from an unknown key (and names the key),
    find-principals who in allowed_signers holds it, verify the whole: key, principal, namespace, validity."""
    namespace = signature.ssh_namespace
    checked = _run(["ssh-keygen", "-Y", "check-novalidate", "-n", namespace, "-s", str(sig)], data)
    if checked.returncode != 0:
        said = _said(checked)
        if "namespace" in said:
            reason = f"wrong namespace: the signature was not made for namespace {namespace!r}"
        elif "incorrect signature" in said:
            reason = "bad signature: the artifact is not what was signed (changed after signing?)"
        else:
            reason = f"{sig} is not a valid OpenSSH signature ({said})"
        raise Unverified(f"{reason}; signature {sig}")
    key = checked.stdout.strip().split(" with ", 1)[-1]  # `Good "ns" signature with ED25519 key SHA256:...`
    found = _run(["ssh-keygen", "-Y", "find-principals", "-s", str(sig), "-f", str(allowed)], b"")
    principals = found.stdout.split() if found.returncode == 0 else []
    if not principals:
        raise Unverified(f"unknown key: {sig} was made with {key}, which {allowed} does not hold")
    wanted = [p for p in principals if not signature.signers or p in signature.signers]
    if not wanted:
        raise Unverified(f"signed by {', '.join(principals)} ({key}), not one of artifact.signature.signers "
                         f"({', '.join(signature.signers)})")
    said = ""
    for principal in wanted:
        done = _run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", principal, "-n", namespace,
                     "-s", str(sig)], data)
        if done.returncode == 0:
            return Signed("ssh", principal, done.stdout.strip().rsplit(" key ", 1)[-1].rsplit(" ", 1)[-1], str(sig))
        said = _said(done)
    raise Unverified(f"{allowed} does not allow {', '.join(wanted)} ({key}) to sign for namespace {namespace!r}: "
                     f"{said}")


def _gpg_signer(data: bytes, sig: Path, keyring: Path, signature: Signature) -> Signed:
    """gpgv, trusting the keyring alone (an empty GNUPGHOME: no user's keys or settings), read by its status lines."""
    with tempfile.TemporaryDirectory(prefix="rollwright-gpgv-") as home:
        done = _run(["gpgv", "--status-fd", "1", "--keyring", str(keyring.resolve()), str(sig), "-"], data,
                    env={"GNUPGHOME": home, "PATH": "/usr/bin:/bin", "LC_ALL": "C"})
    status: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("[GNUPG:] "):
            word, *rest = line[9:].split(" ", 1)
            status.setdefault(word, []).append(rest[0] if rest else "")
    for word, text in GPG_REFUSALS.items():
        if word in status:
            who = status[word][0].split(" ", 1)[-1]
            raise Unverified(f"{text.format(who=who)}; signature {sig}")
    if "NO_PUBKEY" in status or ("ERRSIG" in status and status["ERRSIG"][0].split(" ")[-1:] == ["9"]):
        key = (status.get("NO_PUBKEY") or status["ERRSIG"])[0].split(" ")[0]
        raise Unverified(f"unknown key: {sig} was made with key {key}, which {keyring} does not hold")
    if done.returncode != 0 or "VALIDSIG" not in status or "GOODSIG" not in status:
        raise Unverified(f"{sig} is not a good OpenPGP signature of the artifact ({_said(done)})")
    valid = status["VALIDSIG"][0].split(" ")
    primary, uid = valid[-1].upper(), status["GOODSIG"][0].split(" ", 1)[-1]
    accepted = {s.upper() for s in signature.signers}
    if accepted and not accepted & {primary, valid[0].upper()}:
        raise Unverified(f"signed by {uid} ({primary}), not one of artifact.signature.signers")
    return Signed("gpg", uid, primary, str(sig))


def provenance(loaded: LoadedSpec, signed: Signed | None, project_digest: str) -> dict[str, Any]:
    """What a deploy shipped and where it came from, for its record: never a secret (no env value, no key)."""
    artifact = loaded.spec.artifact
    try:
        spec_digest = hashlib.sha256(loaded.path.read_bytes()).hexdigest()
    except OSError:
        spec_digest = ""
    return {
        "artifact_sha256": artifact.sha256 if artifact else "",
        "source": (str((loaded.base_dir / artifact.path).resolve()) if artifact.path else artifact.url or "")
        if artifact else "",
        "signature": asdict(signed) if signed else None,
        "spec": str(loaded.path.resolve()),
        "spec_sha256": spec_digest,
        "project_sha256": project_digest,
        "rollwright_version": rollwright_version(),
    }


def rollwright_version() -> str:
    try:
        return version("rollwright")
    except PackageNotFoundError:
        return "unknown"


def sign_artifact(artifact: Path, key: Path, namespace: str, *, replace: bool = False) -> Path:
    """`ssh-keygen -Y sign` writing ARTIFACT.sig; an existing signature is replaced only when asked."""
    sig = artifact.with_name(artifact.name + ".sig")
    if not artifact.is_file():
        raise BadInput(f"{artifact}: no such file (build it first)")
    if not key.is_file():
        raise BadInput(f"--key {key}: no such file (an OpenSSH private key, e.g. from `ssh-keygen -t ed25519`)")
    if sig.exists() and not replace:
        raise BadInput(f"{sig} already exists: --force replaces it")
    sig.unlink(missing_ok=True)
    try:  # the terminal stays the tool's: a key with a passphrase asks for it there
        done = subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", namespace, str(artifact)],
                              capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BadInput("ssh-keygen is not installed on this machine (Debian package openssh-client)") from None
    if done.returncode != 0 or not sig.is_file():
        raise BadInput(f"ssh-keygen could not sign {artifact}: {' '.join(done.stderr.split())}")
    return sig
