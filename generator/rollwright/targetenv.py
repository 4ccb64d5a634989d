"""A target's environment: values the app gets in its env file on that target, beside the spec's own.

They live in the target's inventory folder, so the generated project carries them and a plain
`ansible-playbook` run sees them: plain values in `group_vars/all/rollwright_env.yml` (edited
round-trip, comments survive), secrets in `group_vars/all/rollwright_secrets.yml`, one ansible-vault
file. A value that could hold a template is written `!unsafe`: Ansible never templates it, so a `{{` in a
password stays as typed. The vault password comes from a file or an environment variable, never from the command line.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, TaggedScalar
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from rollwright.errors import BadInput
from rollwright.files import replace_file
from rollwright.spec.model import ENV_NAME_RE

PLAIN_FILE = Path("group_vars/all/rollwright_env.yml")
SECRETS_FILE = Path("group_vars/all/rollwright_secrets.yml")
PLAIN_VAR = "rollwright_env"
SECRETS_VAR = "rollwright_secrets"
PASSWORD_FILE_VAR = "ROLLWRIGHT_VAULT_PASSWORD_FILE"
PASSWORD_VAR = "ROLLWRIGHT_VAULT_PASSWORD"
ANSIBLE_PASSWORD_FILE_VAR = "ANSIBLE_VAULT_PASSWORD_FILE"
VAULT_HEADER = b"$ANSIBLE_VAULT;"
NO_PASSWORD = (f"no vault password: set {PASSWORD_FILE_VAR} (a file holding it, or a script printing it) "
               f"or {PASSWORD_VAR}")


@dataclass(frozen=True)
class EnvValue:
    name: str
    value: str
    secret: bool


def vault_password() -> bytes | None:
    """The vault password from the environment, as ansible-playbook will get it (see `runner_env`)."""
    if os.environ.get(PASSWORD_VAR):
        return os.environ[PASSWORD_VAR].encode()
    path = os.environ.get(PASSWORD_FILE_VAR) or os.environ.get(ANSIBLE_PASSWORD_FILE_VAR)
    if not path:
        return None
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import get_file_vault_secret

    try:
        secret = get_file_vault_secret(filename=path, loader=DataLoader())
        secret.load()
    except AnsibleError as exc:
        raise BadInput(f"vault password file {path}: {exc}") from None
    return bytes(secret.bytes)


def runner_env(run_root: Path) -> dict[str, str]:
    """What ansible-playbook needs to open the vault: a password file path. A password given as a
    variable is handed over by a small script that prints it, so it is never written to disk."""
    if os.environ.get(PASSWORD_VAR):
        client = run_root / "vault-password-client"
        script = f'#!/bin/sh\nprintf \'%s\\n\' "${PASSWORD_VAR}"\n'
        if not client.is_file() or client.read_text(encoding="utf-8") != script:
            client.write_text(script, encoding="utf-8")
        client.chmod(stat.S_IRWXU)
        return {ANSIBLE_PASSWORD_FILE_VAR: str(client)}
    if os.environ.get(PASSWORD_FILE_VAR):
        return {ANSIBLE_PASSWORD_FILE_VAR: str(Path(os.environ[PASSWORD_FILE_VAR]).resolve())}
    return {}


def has_secrets(inventory_dir: Path) -> bool:
    """Whether any inventory file is vault-encrypted (then a playbook run needs the password)."""
    return any(p.is_file() and _starts_with(p, VAULT_HEADER) for p in inventory_dir.rglob("*"))


def _starts_with(path: Path, header: bytes) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(header)) == header


def check_vault_password(inventory_dir: Path) -> None:
    """Refuse at once, rather than let ansible fail deep in a run, when the vault cannot be opened."""
    if has_secrets(inventory_dir) and not (os.environ.get(PASSWORD_VAR) or os.environ.get(PASSWORD_FILE_VAR)
                                           or os.environ.get(ANSIBLE_PASSWORD_FILE_VAR)):
        raise BadInput(f"the inventory {inventory_dir} holds vault-encrypted secrets but there is {NO_PASSWORD}")


class TargetEnv:
    """The environment store of one target's inventory folder."""

    def __init__(self, inventory: Path, target: str) -> None:
        if not inventory.is_dir():
            raise BadInput(f"target '{target}': its inventory {inventory} is a file; the environment lives in "
                           "group_vars beside the hosts, so make the inventory a folder (move the file into one)")
        self.target = target
        self.plain_path = inventory / PLAIN_FILE
        self.secrets_path = inventory / SECRETS_FILE

    def list(self) -> list[EnvValue]:
        """Every value, by name (secrets need the vault password when there are any)."""
        found = [EnvValue(n, v, False) for n, v in self._plain().items()]
        found += [EnvValue(n, v, True) for n, v in self._secrets().items()]
        return sorted(found, key=lambda value: value.name)

    def get(self, name: str) -> EnvValue:
        plain = self._plain()
        if name in plain:
            return EnvValue(name, plain[name], False)
        secrets = self._secrets()
        if name in secrets:
            return EnvValue(name, secrets[name], True)
        raise BadInput(f"target '{self.target}' has no env value {name} ({self.plain_path.parent})")

    def set(self, name: str, value: str, secret: bool) -> None:
        """Set NAME; it moves between plain and secret when `secret` says so (never stored twice)."""
        if not re.fullmatch(ENV_NAME_RE, name):
            raise BadInput(f"{name!r} is not an environment variable name (letters, digits, _; not first a digit)")
        if secret:
            secrets = self._secrets()
            secrets[name] = value
            self._write_secrets(secrets)
            self._edit_plain(lambda values: values.pop(name, None))
        else:
            self._drop_secret(name)
            self._edit_plain(lambda values: values.__setitem__(name, _unsafe(value)))

    def delete(self, name: str) -> bool:
        """Remove NAME wherever it is; False when it was not there."""
        removed = False
        if name in self._plain():
            self._edit_plain(lambda values: values.pop(name, None))
            removed = True
        return self._drop_secret(name) or removed

    def _drop_secret(self, name: str) -> bool:
        """Remove NAME from the vault file, if it is there (no file: nothing to open or write)."""
        secrets = self._secrets()
        if secrets.pop(name, None) is None:
            return False
        self._write_secrets(secrets)
        return True

    def _plain(self) -> dict[str, str]:
        data = _load(self.plain_path.read_text(encoding="utf-8")) if self.plain_path.is_file() else {}
        return _values(data, PLAIN_VAR, self.plain_path)

    def _edit_plain(self, change: Callable[[CommentedMap], object]) -> None:
        yaml = _yaml()
        if self.plain_path.is_file():
            data = yaml.load(self.plain_path.read_text(encoding="utf-8")) or CommentedMap()
        else:
            data = CommentedMap()
            data.yaml_set_start_comment(f"Environment of target '{self.target}' (plain values; secrets are in "
                                        f"{SECRETS_FILE.name}).\nManaged with `rollwright env set|delete`.")
        values = data.setdefault(PLAIN_VAR, CommentedMap())
        change(values)
        if not values and self.plain_path.is_file() and len(data) == 1:
            self.plain_path.unlink()
            return
        replace_file(self.plain_path, _dump(data).encode(), mode=0o644)

    def _secrets(self) -> dict[str, str]:
        if not self.secrets_path.is_file():
            return {}
        return _values(_load(_Vault(self.target).decrypt(self.secrets_path.read_bytes()).decode()), SECRETS_VAR,
                       self.secrets_path)

    def _write_secrets(self, secrets: dict[str, str]) -> None:
        if not secrets:
            self.secrets_path.unlink(missing_ok=True)
            return
        data = CommentedMap({SECRETS_VAR: CommentedMap((n, _unsafe(v)) for n, v in sorted(secrets.items()))})
        replace_file(self.secrets_path, _Vault(self.target).encrypt(_dump(data)), mode=0o600)


class _Vault:
    """ansible-vault with the password from the environment, and errors that say what to do."""

    def __init__(self, target: str) -> None:
        from ansible.parsing.vault import VaultLib, VaultSecret

        password = vault_password()
        if password is None:
            raise BadInput(f"target '{target}' keeps secrets in an ansible-vault file and there is {NO_PASSWORD}")
        self.vault, self.target = VaultLib([("default", VaultSecret(password))]), target

    def encrypt(self, text: str) -> bytes:
        return bytes(self.vault.encrypt(text))

    def decrypt(self, data: bytes) -> bytes:
        from ansible.errors import AnsibleError

        try:
            return bytes(self.vault.decrypt(data))
        except AnsibleError:
            raise BadInput(f"target '{self.target}': the vault password does not open its secrets") from None


def _unsafe(value: str) -> TaggedScalar | DoubleQuotedScalarString:
    """`!unsafe` where a template could be (every Jinja delimiter starts with `{`); elsewhere a quoted
    string, since ansible-core resolves an `!unsafe` scalar's type even when quoted (`!unsafe "true"` is True)."""
    if "{" not in value:
        return DoubleQuotedScalarString(value)
    return TaggedScalar(value, style='"', tag="!unsafe")


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _load(text: str) -> object:
    return _yaml().load(text)


def _dump(data: object) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _values(data: object, var: str, path: Path) -> dict[str, str]:
    values = data.get(var) if isinstance(data, dict) else None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise BadInput(f"{path}: '{var}' must be a mapping of NAME: value")
    return {str(name): str(value.value if isinstance(value, TaggedScalar) else value) for name, value in values.items()}
