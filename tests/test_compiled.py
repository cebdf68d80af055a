"""The modules ``cds_service/compiled.py`` names are compiled where a C compiler and Python's
headers are available (``setup.py``); without them the build falls back to the Python modules,
and these tests say so instead of failing. ``B12_COMPILE=0`` builds without them on purpose."""

from __future__ import annotations

import importlib
import os
import shutil
import sysconfig
from pathlib import Path

import pytest

from cds_service.compiled import MODULES, extension, interpreted

ROOT = Path(__file__).resolve().parent.parent


def _can_compile() -> bool:
    """A C compiler and Python's headers (Debian's ``python3-dev``): what building the
    extensions needs."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return shutil.which(compiler) is not None and headers.is_file()


def test_every_compiled_module_has_its_python_source():
    for name in MODULES:
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name


@pytest.mark.skipif(os.environ.get("B12_COMPILE") == "0", reason="built with B12_COMPILE=0")
@pytest.mark.skipif(not _can_compile(), reason="no C compiler or headers: Python modules run")
def test_the_hot_modules_run_compiled():
    assert not interpreted(), "not compiled: is mypy in the build requirements?"
    for name in MODULES:
        assert importlib.import_module(name).__file__ == extension(name)


def test_the_check_names_a_module_that_runs_from_source(monkeypatch):
    monkeypatch.setattr("cds_service.compiled.MODULES", (*MODULES, "cds_service.config"))
    assert interpreted()[-1] == "cds_service.config"
