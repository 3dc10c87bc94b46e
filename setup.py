"""Packaging hook (the rest is in pyproject.toml): the wheel carries the sample site, the
shipped ``config.yaml``, ``locales/`` (catalog sources) and ``sms_templates/``, as
``gateway/skeleton/``, which ``sampark init DIR`` writes out: an installed gateway runs
without a checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SKELETON = ("config.yaml", "locales", "sms_templates")


class BuildWithSkeleton(build_py):
    """``build_py``, then the sample site copied into the built ``gateway`` package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "gateway" / "skeleton"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in SKELETON:
            source = ROOT / name
            if source.is_dir():
                # Compiled catalogs are made at start-up from the sources.
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("*.mo"))
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithSkeleton})
