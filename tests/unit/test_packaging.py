"""A regular install works outside the checkout: the wheel carries the roles (the one copy is the top-level
roles/), so `generate` and `plan` of the example run from a fresh venv in a folder that is no checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_wheel_installed_outside_the_checkout_generates_and_plans(tmp_path: Path, hello_artifact: Path) -> None:
    # the wheel, built from only what a source tree holds (offline: the venv's own setuptools)
    source = tmp_path / "source"
    for name in ("generator", "roles"):  # generator/rollwright/roles stays the link to roles/ that it is
        shutil.copytree(REPO / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
          tmp_path / "wheels", source], tmp_path)
    (wheel,) = (tmp_path / "wheels").glob("rollwright-*.whl")
    shipped = {n.removeprefix("rollwright/roles/") for n in zipfile.ZipFile(wheel).namelist()
               if n.startswith("rollwright/roles/")}
    assert shipped == set(_tree(REPO / "roles"))  # every role file, and nothing else under roles/

    # a fresh venv with the wheel; its dependencies are this venv's (a .pth), so no index is needed
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path)
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index",
          wheel], tmp_path)
    site = Path(_run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     tmp_path).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = _run([venv / "bin" / "python", "-c", "import rollwright; print(rollwright.__file__)"], tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout  # the wheel's copy, not the checkout

    # the example, copied beside its inventories, well away from the checkout
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples" / "hello", work / "examples" / "hello", ignore=shutil.ignore_patterns("dist"))
    shutil.copytree(REPO / "inventories" / "staging", work / "inventories" / "staging")
    (work / "examples" / "hello" / "dist").mkdir()
    shutil.copy2(hello_artifact, work / "examples" / "hello" / "dist")
    spec = work / "examples" / "hello" / "rollwright.yml"
    generated = _run([venv / "bin" / "rollwright", "generate", "-f", spec, "-t", "staging", "-o", work / "out"], work)
    assert "wrote " in generated.stdout
    assert _tree(work / "out" / "roles") == _tree(REPO / "roles")
    planned = _run([venv / "bin" / "rollwright", "plan", "-f", spec, "-t", "staging"], work)
    assert "Stage 1.0.0 on all app hosts at once" in planned.stdout, planned.stdout
