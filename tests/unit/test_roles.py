"""Every role is a well-kept role: its argument specs, a short README and a Molecule scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(path.name for path in (REPO / "roles").iterdir() if (path / "tasks").is_dir())


def test_there_are_roles() -> None:
    assert "release" in ROLES and "rollback" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_a_role_has_argument_specs_a_readme_and_a_molecule_scenario(role: str) -> None:
    missing = [part for part in (f"roles/{role}/meta/argument_specs.yml", f"roles/{role}/README.md",
                                 f"molecule/{role}/molecule.yml") if not (REPO / part).is_file()]
    assert not missing, f"role {role} lacks {', '.join(missing)}"
