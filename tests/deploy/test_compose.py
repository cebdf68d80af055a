"""docker-compose.yml, without Docker: valid against the Compose Specification JSON schema
(tests/data/compose-spec.json, see tests/data/README.md), and saying what the README says:
several service replicas behind nginx, PostgreSQL with a volume and a health check, a demo
FHIR server seeded with the fixture patients, every file it mounts present, every setting
it passes known to the service."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import pytest
import yaml

from cds_service.cdshooks.clients import parse_trusted_clients
from cds_service.config import load_file, load_settings

from .files import ROOT

SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text(encoding="utf-8"))
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
SINGLE = yaml.safe_load((ROOT / "deploy" / "compose.single.yml").read_text(encoding="utf-8"))


#: The schema declares draft 2019-09 (as "http://json-schema.org/draft/2019-09/schema#",
#: a spelling jsonschema does not look up by itself).
VALIDATOR = jsonschema.Draft201909Validator


def errors(document) -> list[str]:
    validator = VALIDATOR(SCHEMA)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_the_schema_is_the_compose_specification():
    assert SCHEMA["title"] == "Compose Specification"
    assert "2019-09" in SCHEMA["$schema"]
    VALIDATOR.check_schema(SCHEMA)


def test_docker_compose_yml_is_valid_against_the_compose_specification():
    assert errors(COMPOSE) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["services"]["cds"].update(replicas=3),  # belongs under deploy
        lambda c: c["services"]["cds"]["deploy"].update(replicas="three"),
        lambda c: c["services"]["postgres"]["healthcheck"].update(command="pg_isready"),
        lambda c: c.update(service={}),
    ],
)
def test_the_validation_catches_a_broken_file(break_it):
    broken = copy.deepcopy(COMPOSE)
    break_it(broken)
    assert errors(broken)


def test_several_replicas_of_the_service_share_postgresql():
    cds = SERVICES["cds"]
    assert cds["build"] == "." and cds["deploy"]["replicas"] >= 2
    assert "ports" not in cds  # reached through nginx only
    assert cds["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = cds["environment"]["CDS_DATABASE_URL"]
    assert url.startswith("postgresql://") and "@postgres:5432/" in url
    assert cds["environment"]["CDS_PROFILE"] == "production"


def test_the_database_password_is_a_secret_never_an_environment_variable():
    cds, postgres = SERVICES["cds"], SERVICES["postgres"]
    assert "postgres_password" in COMPOSE["secrets"]
    assert cds["secrets"] == postgres["secrets"] == ["postgres_password"]
    assert cds["environment"]["CDS_DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    user = cds["environment"]["CDS_DATABASE_URL"].split("//", 1)[1].split("@", 1)[0]
    assert user == "${POSTGRES_USER:-cds}"  # no password in the URL
    for service in SERVICES.values():
        assert "POSTGRES_PASSWORD" not in service.get("environment", {})
        for name in service.get("environment", {}):
            assert "PASSWORD" not in name or name.endswith("_PASSWORD_FILE"), name


def test_each_container_gets_only_what_it_needs():
    # The replicas read their own settings file (CDS_ names only, .env.example); Compose's
    # .env, with the stack's variables, is handed to no container.
    assert SERVICES["cds"]["env_file"] == "cds.env"
    assert [n for n, s in SERVICES.items() if "env_file" in s] == ["cds"]
    assert set(SERVICES["postgres"]["environment"]) == {
        "POSTGRES_DB",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD_FILE",
    }
    assert "environment" not in SERVICES["nginx"]


def test_the_replicas_run_hardened():
    for compose in (COMPOSE, SINGLE):
        cds = compose["services"]["cds"]
        assert cds["read_only"] is True and cds["tmpfs"] == ["/tmp"]
        assert cds["cap_drop"] == ["ALL"]
        assert cds["security_opt"] == ["no-new-privileges:true"]
        assert cds["user"].split(":")[0] not in ("0", "root")
        assert cds["deploy"]["resources"]["limits"]["memory"]
        assert cds["stop_grace_period"] == "40s"


def test_the_single_container_file_puts_nginx_in_front():
    assert errors(SINGLE) == []
    cds, nginx = SINGLE["services"]["cds"], SINGLE["services"]["nginx"]
    assert "ports" not in cds and nginx["ports"] == ["${HTTP_PORT:-8080}:8080"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    url = cds["environment"]["CDS_DATABASE_URL"]
    directory = url.removeprefix("sqlite:///").rsplit("/", 1)[0]
    assert any(v.endswith(":" + directory) for v in cds["volumes"])
    for volume in cds["volumes"] + nginx["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (ROOT / "deploy" / source).resolve().exists(), source


def test_postgresql_keeps_its_data_in_a_volume_and_reports_health():
    postgres = SERVICES["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in COMPOSE["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_nginx_balances_over_the_replicas():
    nginx = SERVICES["nginx"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert re.search(r"server\s+cds:8080\s+resolve;", conf)  # every replica behind `cds`
    assert "proxy_pass http://cds_service;" in conf
    assert conf.count("{") == conf.count("}")
    published = nginx["ports"][0].rsplit(":", 1)[1]
    assert re.search(rf"listen\s+{published};", conf)


def test_nginx_answers_its_own_errors_with_operation_outcomes():
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    bodies = re.findall(r"return \d{3} '(\{.*\})';", conf)
    assert len(bodies) == 2
    for body in bodies:
        outcome = json.loads(body)
        assert outcome["resourceType"] == "OperationOutcome"
        coding = outcome["issue"][0]["details"]["coding"][0]
        assert coding["system"] == "https://b12-cds.example.org/CodeSystem/error"
    limit = int(re.search(r"client_max_body_size (\d+)m;", conf)[1]) << 20
    assert limit > load_settings({}).max_body_bytes  # the service answers 413 itself


def test_nginx_buffers_whole_requests_with_timeouts():
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert "proxy_request_buffering on;" in conf
    for timeout in ("client_header_timeout", "client_body_timeout"):
        assert re.search(rf"{timeout} \d+s;", conf), timeout


def test_the_variant_for_older_nginx_differs_only_in_how_it_finds_the_replicas():
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    variant = (ROOT / "deploy" / "nginx-before-1.27.3.conf").read_text(encoding="utf-8")
    directives = "\n".join(line for line in variant.splitlines() if not line.startswith("#"))
    assert "resolve;" not in directives and not re.search(r"^\s*upstream ", directives, re.M)

    def body(text: str) -> str:
        text = re.sub(r"(?s)^(#[^\n]*\n)+", "", text)  # the header comment
        text = re.sub(r"(?s)\n    upstream cds_service \{.*?\}\n", "\n", text)
        text = text.replace(
            "set $cds_service cds:8080;\n            proxy_pass http://$cds_service;",
            "proxy_pass http://cds_service;",
        )
        return re.sub(r"\n\n+", "\n\n", text)

    assert body(variant) == body(conf)


def test_the_demo_fhir_server_is_seeded_with_the_fixture_patients():
    fhir, seed = SERVICES["fhir"], SERVICES["fhir-seed"]
    assert fhir["profiles"] == seed["profiles"] == ["demo"]
    assert "./fixtures/scenarios:/seed/scenarios:ro" in seed["volumes"]
    assert seed["command"][:2] == ["python", "/seed/seed_fhir.py"]
    assert "http://fhir:8080/fhir" in seed["command"]


def test_every_mounted_file_exists():
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    assert (ROOT / "Dockerfile").exists()
    assert (ROOT / ".env.example").exists()  # `cp .env.example .env` before `up`


def test_the_settings_it_passes_are_known_to_the_service():
    environment = dict(SERVICES["cds"]["environment"])
    environment["CDS_DATABASE_URL"] = "postgresql://cds:x@postgres:5432/cds"
    environment.pop("CDS_TRUSTED_CLIENTS")  # paths inside the container
    environment.pop("CDS_DATABASE_PASSWORD_FILE")
    load_settings({**environment, "CDS_ALLOW_ANONYMOUS": "1"})


def test_the_shipped_trusted_clients_file_is_valid():
    clients = parse_trusted_clients(
        load_file(ROOT / "deploy" / "trusted-clients.yaml", "CDS_TRUSTED_CLIENTS")
    )
    assert [c.issuer for c in clients] == ["https://ehr.example.org"]
