"""`rollwright sign ARTIFACT --key KEY`: an OpenSSH signature of a build, for `artifact.signature` (method ssh)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rollwright.cli.common import Subparsers, command, say


def cmd_sign(args: argparse.Namespace) -> int:
    from rollwright.run.provenance import sign_artifact

    sig = sign_artifact(args.artifact, args.key, args.namespace, replace=args.force)
    say(f"wrote {sig} (namespace {args.namespace!r}); a deploy checks it against artifact.signature.allowed_signers, "
        "which must hold this key's public half")
    return 0


def register(sub: Subparsers) -> None:
    from rollwright.spec.model import NAMESPACE_DEFAULT

    p = command(sub, "sign", "sign a build with an OpenSSH key (ssh-keygen -Y sign): writes ARTIFACT.sig",
                ["rollwright sign dist/hello-1.4.0.tar.gz --key ~/.ssh/release_ed25519",
                 "rollwright sign dist/hello-1.4.0.tar.gz --key release_ed25519 --namespace hello --force"],
                more="The spec's artifact.signature (method: ssh, allowed_signers: FILE) says who may sign; an "
                     "allowed-signers line is `PRINCIPAL namespaces=\"rollwright\" ssh-ed25519 AAAA...`.")
    p.add_argument("artifact", metavar="ARTIFACT", type=Path, help="the tarball to sign")
    p.add_argument("--key", required=True, type=Path, metavar="KEY", help="the OpenSSH private key that signs")
    p.add_argument("--namespace", default=NAMESPACE_DEFAULT,
                   help=f"what the signature is for (default {NAMESPACE_DEFAULT}: the spec's signature.namespace)")
    p.add_argument("--force", action="store_true", help="replace an existing ARTIFACT.sig")
    p.set_defaults(func=cmd_sign)
