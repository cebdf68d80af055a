"""The modules compiled to C with mypyc when the package is built (``setup.py``).

They are the FHIR reading of every request: the hot path that Python's interpreter overhead
dominates (docs/benchmarks.md, "Compiled FHIR reading"). The Python source stays the
reference: a build without a C compiler installs them as plain Python and gives the same
answers, only slower; ``tests/test_compiled.py`` checks that a build with a compiler did
compile them (``python -m cds_service.compiled`` asks the same of an installed build: the image's
does), and the test session refuses to start on an extension older than its source.

mypyc's rules for these modules (``make lint`` type-checks them, the build compiles them):
their annotations are checked at run time, so what comes from a request is typed ``Any``
or ``object``, never the shape it ought to have; a test cannot monkeypatch a function that
compiled code calls (compiled calls bind early); and ``continue`` / ``break`` may not sit
inside a ``with`` block.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

#: Module names, in the order they are compiled. ``setup.py`` runs this file on its own,
#: without importing the package: standard library imports only.
MODULES = (
    "cds_service.fhir.jsonread",
    "cds_service.fhir.dates",
    "cds_service.fhir.lenient",
    "cds_service.fhir.medications",
    "cds_service.fhir.extract",
)


def extension(name: str) -> str | None:
    """The compiled extension this interpreter would load ``name`` from, or None (its Python
    source, or nothing)."""
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec is not None else None
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return origin if origin is not None and origin.endswith(suffixes) else None


def interpreted() -> list[str]:
    """The modules of ``MODULES`` this interpreter would load from Python source rather than
    from a compiled extension (none, in a build that compiled them)."""
    return [name for name in MODULES if extension(name) is None]


if __name__ == "__main__":
    missing = interpreted()
    if missing:
        print(f"not compiled: {', '.join(missing)}", file=sys.stderr)
    sys.exit(1 if missing else 0)
