"""Install the test connector packages into a folder, as pip would into site-packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGES = Path(__file__).parent / "packages"


def pip_install(target: Path, *projects: Path) -> Path:
    """``pip install --target`` local project folders, offline, as pip installs into site-packages."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            *(str(p) for p in projects),
        ],
        check=True,
        capture_output=True,
    )
    return target


def install_test_packages(target: Path, *names: str) -> Path:
    """``pip install --target`` the named packages of ``tests/packages``; returns the folder."""
    return pip_install(target, *(PACKAGES / n for n in names))
