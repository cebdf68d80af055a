"""Build hook: setuptools reads everything else from setup.cfg.

The modules ``cds_service/compiled.py`` names are compiled to C extensions with mypyc (the
compiler mypy ships). The extensions are optional: where no C compiler is available the
build warns and installs those modules as plain Python, which behave the same, more slowly.
``B12_COMPILE=0`` builds without them on purpose.

mypyc analyses and translates the modules when ``build_ext`` runs, not when this file is
read: a pip install reads it three times (requirements, metadata, build) and needs the
extensions only once.
"""

import os
import runpy
import tempfile

from setuptools import Distribution, setup
from setuptools.command.build_ext import build_ext

COMPILE = os.environ.get("B12_COMPILE", "1") != "0"


#: mypy's settings for the compilation: fhir.resources (imported by fhir/models.py for strict
#: validation, never by compiled code) is taken as untyped. pip's isolated build environment
#: does not have it installed, and analysing pydantic's types, where it is, took most of a
#: minute and changes nothing the compiler emits. `make lint` still checks it.
MYPYC_CONFIG = """\
[mypy]
python_version = 3.11

[mypy-fhir.*]
follow_imports = skip
ignore_missing_imports = True
"""


def compiled_extensions():
    from mypyc.build import mypycify

    names = runpy.run_path(os.path.join("cds_service", "compiled.py"))["MODULES"]
    paths = [os.path.join(*name.split(".")) + ".py" for name in names]
    with tempfile.TemporaryDirectory() as directory:
        config = os.path.join(directory, "mypyc.ini")
        with open(config, "w", encoding="utf-8") as file:
            file.write(MYPYC_CONFIG)
        extensions = mypycify(["--config-file", config, *paths], opt_level="3", debug_level="0")
    for extension in extensions:
        extension.optional = True  # no compiler: a warning, and the Python modules
    return extensions


class BuildCompiled(build_ext):
    def finalize_options(self):
        if COMPILE and not self.distribution.ext_modules:
            self.distribution.ext_modules = compiled_extensions()
        super().finalize_options()


class WithExtensions(Distribution):
    """A distribution with extensions (a platform wheel, ``build_ext`` run), though they are
    only made when ``build_ext`` runs."""

    def has_ext_modules(self):
        return COMPILE


setup(distclass=WithExtensions, cmdclass={"build_ext": BuildCompiled})
