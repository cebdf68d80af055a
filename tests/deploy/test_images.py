"""The image and the compose stack, built and run (marker ``docker``; .ci/run starts a daemon
when the machine can). Skipped, saying why, without a daemon. Where Docker Hub is out of
reach the base images are stand-ins (tests/deploy/standins.py); the terminal summary says
which parts ran on them."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import date, datetime, timezone

import pytest
import yaml

from . import standins
from .docker_env import (
    CACHE,
    IMAGE,
    REPORT,
    address,
    build_image,
    daemon_problem,
    docker,
    health,
    http,
    logs,
    wait_for,
)
from .files import ROOT

pytestmark = pytest.mark.docker

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SCENARIO = ROOT / "fixtures" / "scenarios" / "folic-acid-with-b12-118-megaloblastic"
#: A password URL parsing would break on.
AWKWARD_PASSWORD = "p@ss%w0rd:/?#[]! é"


def hardened_run_options() -> list[str]:
    """docker run options for exactly the hardening docker-compose.yml gives the replicas."""
    cds = COMPOSE["services"]["cds"]
    options = ["--read-only"] if cds["read_only"] else []
    for path in cds["tmpfs"]:
        options += ["--tmpfs", path]
    for capability in cds["cap_drop"]:
        options += ["--cap-drop", capability]
    for option in cds["security_opt"]:
        options += ["--security-opt", option]
    options += ["--user", cds["user"], "--memory", cds["deploy"]["resources"]["limits"]["memory"]]
    options += ["--stop-timeout", str(int(cds["stop_grace_period"].rstrip("s")))]
    return options


def folic_acid_request() -> dict:
    """The scenario's request with its dates moved so that its evaluation time is today (the
    container's clock cannot be set): the same card, whatever the day."""
    scenario = json.loads((SCENARIO / "scenario.json").read_text(encoding="utf-8"))
    evaluated = datetime.fromisoformat(scenario["evaluationTime"].replace("Z", "+00:00")).date()
    shift = datetime.now(timezone.utc).date() - evaluated
    text = (SCENARIO / "request.json").read_text(encoding="utf-8")

    def moved(match: re.Match) -> str:
        if match[1] == "birthDate":
            return match[0]
        day = date.fromisoformat(match[2]) + shift
        return f'"{match[1]}": "{day.isoformat()}{match[3]}"'

    text = re.sub(r'"(\w+)": "(\d{4}-\d{2}-\d{2})([^"]*)"', moved, text)
    request = json.loads(text)
    request["hookInstance"] = str(uuid.uuid4())
    return request


@pytest.fixture(scope="session")
def daemon():
    problem = daemon_problem()
    if problem:
        pytest.skip(problem)
    try:
        stand_ins = standins.ensure(CACHE, build=False)
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.skip(f"base images: {exc}")
    for tag in stand_ins:
        REPORT.append(f"{tag}: stand-in, {standins.stand_in_label(tag)}")
    return stand_ins


@pytest.fixture(scope="session")
def image(daemon):
    seconds = build_image(ROOT)
    size = docker("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip()
    REPORT.append(f"{IMAGE}: built in {seconds:.0f} s, {int(size) / 1e6:.0f} MB")
    return IMAGE


@pytest.fixture
def network(daemon):
    name = f"cds-test-{uuid.uuid4().hex[:8]}"
    docker("network", "create", name)
    containers: list[str] = []
    yield name, containers
    for container in containers:
        docker("rm", "-f", "-v", container, check=False)
    docker("network", "rm", name, check=False)


def run(network, image, *options: str, name: str | None = None, command=()) -> str:
    net, containers = network
    name = name or f"cds-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "--network", net, *options, image, *command)
    containers.append(name)
    return name


ANONYMOUS = ["-e", "CDS_ALLOW_ANONYMOUS=1"]  # no EHR key in the tests: production, no token


def base_url(container: str, network, port: int = 8080) -> str:
    return f"http://{address(container, network[0])}:{port}"


def check_the_service(url: str, container: str) -> None:
    wait_for(lambda: http("GET", url + "/healthz")[0] == 200, 60, "/healthz answers")
    assert http("GET", url + "/readyz")[0] == 200
    status, _, discovery = http("GET", url + "/cds-services")
    assert status == 200 and {s["id"] for s in discovery["services"]} >= {"b12-order-sign"}
    status, _, answer = http("POST", url + "/cds-services/b12-order-sign", folic_acid_request())
    assert status == 200, answer
    assert [c["indicator"] for c in answer["cards"]] == ["critical"]
    assert "Folic acid" in answer["cards"][0]["summary"]
    wait_for(lambda: health(container) == "healthy", 60, "Docker reports the container healthy")


def test_hardened_with_sqlite_serves_reports_healthy_and_stops_cleanly(network, image):
    container = run(network, image, *hardened_run_options(), *ANONYMOUS)
    check_the_service(base_url(container, network), container)
    started = time.monotonic()
    docker("stop", container)
    stopped_in = time.monotonic() - started
    assert stopped_in < 30, stopped_in  # gunicorn's graceful stop, well within the grace period
    state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
    assert state["ExitCode"] == 0, logs(container)[-2000:]


def test_the_health_check_follows_cds_port(network, image):
    container = run(network, image, *hardened_run_options(), *ANONYMOUS, "-e", "CDS_PORT=9090")
    wait_for(lambda: http("GET", base_url(container, network, 9090) + "/healthz")[0] == 200, 60, "")
    wait_for(lambda: health(container) == "healthy", 60, "healthy on port 9090")


def test_a_read_only_sqlite_path_stops_with_a_clear_error(network, image):
    container = run(
        network,
        image,
        *hardened_run_options(),
        *ANONYMOUS,
        "-e",
        "CDS_DATABASE_URL=sqlite:////srv/cds/readonly/cds.sqlite3",
    )
    wait_for(
        lambda: docker("inspect", "--format", "{{.State.Running}}", container).stdout.strip()
        == "false",
        60,
        "exit",
    )
    assert "is not writable (a read-only container needs a volume there" in logs(container)


def postgres(network, password: str) -> tuple[str, str]:
    """A PostgreSQL container with the password in a secret file; its name and the file."""
    secret = ROOT / "var" / f"pg-secret-{uuid.uuid4().hex[:8]}"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o644)
    name = run(
        network,
        "postgres:16-alpine",
        "-e",
        "POSTGRES_USER=cds",
        "-e",
        "POSTGRES_DB=cds",
        "-e",
        "POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password",
        "-v",
        f"{secret}:/run/secrets/postgres_password:ro",
    )
    wait_for(
        lambda: docker("exec", name, "pg_isready", "-U", "cds", "-d", "cds", check=False).returncode
        == 0,
        90,
        "PostgreSQL ready",
    )
    return name, str(secret)


def test_hardened_with_postgresql_and_an_awkward_password(network, image):
    pg, secret = postgres(network, AWKWARD_PASSWORD)
    container = run(
        network,
        image,
        *hardened_run_options(),
        *ANONYMOUS,
        "-e",
        f"CDS_DATABASE_URL=postgresql://cds@{pg}:5432/cds",
        "-e",
        "CDS_DATABASE_PASSWORD_FILE=/run/secrets/postgres_password",
        "-v",
        f"{secret}:/run/secrets/postgres_password:ro",
    )
    check_the_service(base_url(container, network), container)
    count = docker(
        "exec", pg, "psql", "-U", "cds", "-d", "cds", "-Atc", "select count(*) from issued_cards"
    )
    assert int(count.stdout.strip()) >= 1
    inspected = docker("inspect", container).stdout
    assert AWKWARD_PASSWORD not in inspected and "p@ss" not in inspected


def test_a_refused_password_is_named_at_start_up(network, image):
    pg, _ = postgres(network, "right")
    wrong = ROOT / "var" / f"pg-wrong-{uuid.uuid4().hex[:8]}"
    wrong.write_text("wrong", encoding="utf-8")
    wrong.chmod(0o644)
    container = run(
        network,
        image,
        *hardened_run_options(),
        *ANONYMOUS,
        "-e",
        f"CDS_DATABASE_URL=postgresql://cds@{pg}:5432/cds",
        "-e",
        "CDS_DATABASE_PASSWORD_FILE=/run/secrets/postgres_password",
        "-v",
        f"{wrong}:/run/secrets/postgres_password:ro",
    )
    wait_for(
        lambda: docker("inspect", "--format", "{{.State.Running}}", container).stdout.strip()
        == "false",
        60,
        "exit",
    )
    output = logs(container)
    assert "password authentication failed" in output and "wrong" not in output.replace(
        "wrong password", ""
    )
