"""The layering of docs/architecture.md, enforced: imports point inward only, and each third-party
library has one home. Walks the source with ``ast``; fails on a violation."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Which first-party packages each layer may import (besides itself).
ALLOWED_FIRST_PARTY = {
    "cds_service.domain": set(),
    "cds_service.fhir": {"cds_service.domain"},
    "cds_service.storage": set(),
    "cds_service.cdshooks": {"cds_service.fhir", "cds_service.domain", "cds_service.storage"},
    "cds_service.web": {
        "cds_service.cdshooks",
        "cds_service.config",
        "cds_service.domain",
        "cds_service.svgchart",
    },
    # The population audit runs the services' own code (cdshooks service definitions, fhir
    # extraction, domain rules) outside a request; its chart is drawn by svgchart.
    "cds_service.audit": {
        "cds_service.cdshooks",
        "cds_service.fhir",
        "cds_service.domain",
        "cds_service.svgchart",
    },
    "cds_service.svgchart": set(),
    "cds_service.config": {"cds_service.domain"},
    "cds_service.logs": set(),
    # The composition root: the one module of cds_service that may import hooks.
    "cds_service.bootstrap": {"cds_service", "hooks"},
    "cds_service.cli": {"cds_service"},
    "cds_service.serving": {"cds_service"},
    "cds_service": set(),
    "hooks": {"cds_service.cdshooks.service", "cds_service.domain"},
}

#: Third-party libraries and where they may be imported (module prefixes).
HOMES = {
    "flask": ("cds_service.web", "cds_service.bootstrap"),
    "flask_cors": ("cds_service.web",),
    # Flask's own template escaping; markdown-it-py renders card Markdown for the home page.
    "markupsafe": ("cds_service.web",),
    "markdown_it": ("cds_service.web.markdown",),
    "werkzeug": ("cds_service.web",),
    "marshmallow": ("cds_service.cdshooks",),
    "apispec": ("cds_service.cdshooks.openapi",),
    "fhir": ("cds_service.fhir",),
    "pydantic": ("cds_service.fhir",),
    "requests": (
        "cds_service.fhir.client",
        "cds_service.fhir.ssrf",
        "cds_service.cdshooks.jwks",
    ),
    "urllib3": ("cds_service.fhir.client", "cds_service.fhir.ssrf"),
    "yaml": ("cds_service.config",),
    "gunicorn": ("cds_service.cli", "cds_service.serving"),
    "jwt": ("cds_service.cdshooks.auth", "cds_service.cdshooks.jwks"),
    # PyJWT's key types: a parsed JWK is checked to be a public key before it is kept.
    "cryptography": ("cds_service.cdshooks.jwks",),
    "sqlalchemy": ("cds_service.storage",),
    "psycopg": ("cds_service.storage",),
    "prometheus_client": ("cds_service.web.metrics",),
    # The request body parse (the defensive checks stay in that one module).
    "orjson": ("cds_service.web.jsonbody",),
    "dask": ("cds_service.audit.cluster",),
    "distributed": ("cds_service.audit.cluster",),
}


def modules():
    for package in ("cds_service", "hooks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imports(name: str, path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                yield target
                if not node.module:
                    for alias in node.names:
                        yield f"{target}.{alias.name}"
            else:
                yield node.module


def layer_of(name: str) -> str:
    best = ""
    for layer in ALLOWED_FIRST_PARTY:
        if (name == layer or name.startswith(layer + ".")) and len(layer) > len(best):
            best = layer
    return best


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(sources=None):
    found = []
    stdlib = set(sys.stdlib_module_names)
    for name, path in sources if sources is not None else modules():
        layer = layer_of(name)
        for target in imports(name, path):
            top = target.split(".")[0]
            if top in stdlib or top == "__future__":
                continue
            if top in ("cds_service", "hooks"):
                if top == "hooks" and layer not in ("hooks", "cds_service.bootstrap"):
                    found.append(f"{name} imports {target}: nothing in cds_service imports hooks")
                    continue
                if within(target, layer) or layer_of(target) == layer:
                    continue
                allowed = ALLOWED_FIRST_PARTY[layer]
                if not any(within(target, a) for a in allowed) and not (
                    "cds_service" in allowed and top == "cds_service"
                ):
                    found.append(f"{name} ({layer}) imports {target}")
                continue
            homes = HOMES.get(top)
            if homes is None:
                found.append(
                    f"{name} imports {target}: a third-party library with no declared home"
                )
            elif not any(within(name, home) for home in homes):
                found.append(f"{name} imports {target}: its home is {', '.join(homes)}")
    return found


def test_imports_respect_the_layers():
    assert violations() == []


def test_the_checker_catches_a_violation(tmp_path):
    """A test that cannot fail proves nothing: plant bad imports and see them caught."""
    bad = tmp_path / "_planted_violation.py"
    bad.write_text(
        "import flask\nfrom cds_service.web import create_app\nimport hooks\n", encoding="utf-8"
    )
    found = violations([("cds_service.domain._planted_violation", bad)])
    assert any("_planted_violation imports flask" in v for v in found)
    assert any(
        "_planted_violation (cds_service.domain) imports cds_service.web" in v for v in found
    )
    assert any("nothing in cds_service imports hooks" in v for v in found)


@pytest.mark.parametrize("layer", ["cds_service.domain"])
def test_domain_is_standard_library_only(layer):
    assert not [v for v in violations() if v.startswith(layer)]
