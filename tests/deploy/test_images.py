"""The image and the compose stack, built and run (marker ``docker``; .ci/run starts a daemon
when the machine can). Skipped, saying why, without a daemon. Where Docker Hub is out of
reach the base images are stand-ins (tests/deploy/standins.py); the terminal summary says
which parts ran on them."""

from __future__ import annotations

import json
import os
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
    assert "folic acid" in answer["cards"][0]["summary"].lower()
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
    assert "does not exist; create it first (a read-only container needs a volume there" in logs(
        container
    )


def secret_file():
    """A file to bind-mount as a secret, in a 0700 directory (as docs/deployment.md advises:
    the bind mount bypasses the directory)."""
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="cds-secret-")) / "password"


def postgres(network, password: str) -> tuple[str, str]:
    """A PostgreSQL container with the password in a secret file; its name and the file."""
    secret = secret_file()
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

    def recorded() -> int:
        sql = "select count(*) from issued_cards"
        return int(docker("exec", pg, "psql", "-U", "cds", "-d", "cds", "-Atc", sql).stdout)

    # The ledger is written by a background writer, a moment after the answer.
    wait_for(lambda: recorded() >= 1, 10, "the card recorded in PostgreSQL")
    inspected = docker("inspect", container).stdout
    assert AWKWARD_PASSWORD not in inspected and "p@ss" not in inspected


def test_a_refused_password_is_named_at_start_up(network, image):
    pg, _ = postgres(network, "right")
    wrong = secret_file()
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


# --- the compose stack ------------------------------------------------------------------------


def compose_project(tmp_path_factory, compose_file: str, files: dict[str, str]):
    """A copy of what compose mounts, with cds.env and the password secret, and an override
    for the tests: no EHR key here (anonymous calls), and nginx's configuration for nginx
    older than 1.27.3 when the nginx image is the Debian stand-in."""
    import shutil

    project = tmp_path_factory.mktemp("compose")
    (project / "deploy").mkdir()
    for name in ("nginx.conf", "nginx-before-1.27.3.conf", "trusted-clients.yaml"):
        shutil.copy(ROOT / "deploy" / name, project / "deploy" / name)
    shutil.copy(ROOT / compose_file, project / compose_file)
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text, encoding="utf-8")
        (project / name).chmod(0o644)
    return project


PORTS: dict = {}


def free_port(project) -> int:
    from tests.integration.server import free_port as pick

    return PORTS.setdefault(project, pick())


def compose(project, files, *argv, check=True, timeout=600):
    import subprocess

    name = f"cds{os.getpid()}{project.name}".replace("_", "").lower()
    # Paths in a compose file are relative to its own directory (Compose's rule).
    directory = (project / files[0]).parent
    command = ["docker-compose", "--project-name", name, "--project-directory", str(directory)]
    for file in files:
        command += ["-f", str(project / file)]
    # Each project publishes nginx on a port of its own (two stacks may be up at once).
    environment = {**os.environ, "HTTP_PORT": str(free_port(project))}
    result = subprocess.run(
        command + list(argv),
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
        env=environment,
    )
    if check and result.returncode:
        raise AssertionError(f"{' '.join(argv)}: {result.stderr[-3000:]}")
    return result


def nginx_variant(stand_ins, directory: str = "./deploy/") -> str:
    if "nginx:1.28-alpine" in stand_ins:
        note = "nginx: deploy/nginx-before-1.27.3.conf (the stand-in is nginx 1.22)"
        if note not in REPORT:
            REPORT.append(note)
        return directory + "nginx-before-1.27.3.conf"
    return directory + "nginx.conf"


@pytest.fixture(scope="module")
def stack(daemon, image, tmp_path_factory):
    import shutil

    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose (.ci/run installs Debian's docker-compose)")
    override = {
        "services": {
            "cds": {"environment": {"CDS_TRUSTED_CLIENTS": "", "CDS_ALLOW_ANONYMOUS": "1"}},
            "nginx": {
                "volumes": [f"{nginx_variant(daemon)}:/etc/nginx/nginx.conf:ro"],
            },
        }
    }
    project = compose_project(
        tmp_path_factory,
        "docker-compose.yml",
        {
            "cds.env": "CDS_PUBLIC_BASE_URL=http://localhost:8080\n",
            "secrets/postgres_password": AWKWARD_PASSWORD + "\n",
            "test-override.yml": yaml.safe_dump(override),
        },
    )
    # The override replaces nginx's volume list: compose merges volumes by target.
    files = ["docker-compose.yml", "test-override.yml"]
    try:
        compose(project, files, "up", "-d", "--no-build", timeout=900)
        yield project, files
    finally:
        compose(project, files, "down", "-v", "--timeout", "5", check=False)


def containers(project, files, service) -> list[str]:
    ids = compose(project, files, "ps", "-q", service).stdout.split()
    return [docker("inspect", "--format", "{{.Name}}", i).stdout.strip().lstrip("/") for i in ids]


def network_of(container: str) -> str:
    networks = json.loads(
        docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", container).stdout
    )
    return next(iter(networks))


def stack_url(project, files) -> str:
    (nginx,) = containers(project, files, "nginx")
    return f"http://{address(nginx, network_of(nginx))}:8080"


def test_compose_three_replicas_become_healthy(stack):
    project, files = stack
    replicas = containers(project, files, "cds")
    assert len(replicas) == 3
    for replica in replicas:
        wait_for(lambda: health(replica) == "healthy", 120, f"{replica} healthy")
    wait_for(lambda: http("GET", stack_url(*stack) + "/readyz")[0] == 200, 60, "/readyz")


def test_compose_migrates_the_schema_once(stack):
    (pg,) = containers(*stack, "postgres")
    rows = docker(
        "exec",
        pg,
        "psql",
        "-U",
        "cds",
        "-d",
        "cds",
        "-Atc",
        "select version, count(*) from schema_version group by version order by version",
    ).stdout.split()
    assert rows and all(row.endswith("|1") for row in rows), rows


def test_compose_spreads_requests_over_the_replicas_and_records_cards(stack):
    url = stack_url(*stack)
    request = folic_acid_request()
    status, _, answer = http("POST", url + "/cds-services/b12-order-sign", request)
    assert status == 200 and [c["indicator"] for c in answer["cards"]] == ["critical"]
    for _ in range(30):
        assert http("GET", url + "/cds-services")[0] == 200
    (nginx,) = containers(*stack, "nginx")
    upstreams = {
        json.loads(line)["upstream"]
        for line in logs(nginx).splitlines()
        if line.startswith("{") and '"path":"/cds-services"' in line
    }
    assert len(upstreams) >= 2, upstreams  # round robin over the replicas
    (pg,) = containers(*stack, "postgres")
    sql = f"select count(*) from issued_cards where hook_instance = '{request['hookInstance']}'"

    def recorded() -> int:
        return int(docker("exec", pg, "psql", "-U", "cds", "-d", "cds", "-Atc", sql).stdout)

    # The ledger is written by a background writer, a moment after the answer.
    wait_for(lambda: recorded() >= 1, 10, "the card recorded in PostgreSQL")
    assert recorded() == 1


def test_compose_without_postgresql_is_not_ready_but_still_answers_cards(stack):
    project, files = stack
    url = stack_url(project, files)
    compose(project, files, "stop", "postgres")
    try:
        wait_for(lambda: http("GET", url + "/readyz")[0] == 503, 60, "/readyz 503")
        status, _, answer = http(
            "POST", url + "/cds-services/b12-order-sign", folic_acid_request(), timeout=15
        )
        assert status == 200, answer
        assert [c["indicator"] for c in answer["cards"]] == ["critical"]
    finally:
        compose(project, files, "start", "postgres")


# --- slow clients, against what the documentation says to run for one container -------------

SLOW_CLIENTS = 200


class Dribblers:
    """SLOW_CLIENTS connections: half send their headers a line at a time, half a body a byte
    at a time; each sends a little more every second and never finishes."""

    def __init__(self, host: str, port: int) -> None:
        import socket

        self.sockets = []
        for i in range(SLOW_CLIENTS):
            sock = socket.create_connection((host, port), timeout=5)
            if i % 2:
                sock.sendall(b"GET /cds-services HTTP/1.1\r\nHost: cds\r\n")
            else:
                sock.sendall(
                    b"POST /cds-services/b12-order-sign HTTP/1.1\r\nHost: cds\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                )
            self.sockets.append((sock, i % 2))

    def dribble(self) -> None:
        for sock, headers in self.sockets:
            try:
                sock.sendall(b"X-Slow: 1\r\n" if headers else b" ")
            except OSError:
                pass  # dropped by the server: fine

    def close(self) -> None:
        for sock, _ in self.sockets:
            sock.close()


def legitimate_calls_under_slow_clients(url: str, host: str, port: int, seconds: float = 8):
    """Latencies (None: no answer within 1 s) of discovery and card calls made while the slow
    connections dribble."""
    dribblers = Dribblers(host, port)
    latencies = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            dribblers.dribble()
            for method, path, body in (
                ("GET", "/cds-services", None),
                ("POST", "/cds-services/b12-order-sign", folic_acid_request()),
            ):
                started = time.monotonic()
                try:
                    status = http(method, url + path, body, timeout=1)[0]
                    latencies.append(time.monotonic() - started if status == 200 else None)
                except OSError:
                    latencies.append(None)
            time.sleep(0.5)
    finally:
        dribblers.close()
    return latencies


@pytest.fixture(scope="module")
def single(daemon, image, tmp_path_factory):
    import shutil

    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose (.ci/run installs Debian's docker-compose)")
    override = {
        "services": {
            "cds": {"environment": {"CDS_TRUSTED_CLIENTS": "", "CDS_ALLOW_ANONYMOUS": "1"}},
            "nginx": {"volumes": [f"{nginx_variant(daemon, './')}:/etc/nginx/nginx.conf:ro"]},
        }
    }
    project = compose_project(
        tmp_path_factory,
        "deploy/compose.single.yml",
        {
            "cds.env": "CDS_PUBLIC_BASE_URL=http://localhost:8080\n",
            "deploy/test-override.yml": yaml.safe_dump(override),
        },
    )
    files = ["deploy/compose.single.yml", "deploy/test-override.yml"]
    try:
        compose(project, files, "up", "-d", "--no-build", timeout=900)
        (cds,) = containers(project, files, "cds")
        wait_for(lambda: health(cds) == "healthy", 120, "the service healthy")
        yield project, files
    finally:
        compose(project, files, "down", "-v", "--timeout", "5", check=False)


def test_the_documented_single_container_answers_within_1_s_under_200_slow_clients(single):
    (nginx,) = containers(*single, "nginx")
    host = address(nginx, network_of(nginx))
    url = f"http://{host}:8080"
    wait_for(lambda: http("GET", url + "/readyz")[0] == 200, 60, "ready through nginx")
    latencies = legitimate_calls_under_slow_clients(url, host, 8080)
    REPORT.append(
        f"slow clients: {SLOW_CLIENTS} dribbling through nginx, {len(latencies)} legitimate"
        f" calls, slowest {max(x or 99 for x in latencies):.2f} s"
    )
    assert latencies and None not in latencies, latencies


def test_without_the_proxy_slow_clients_starve_the_service(single):
    # Why nginx is not optional: the same slow clients straight at gunicorn's threads.
    (cds,) = containers(*single, "cds")
    host = address(cds, network_of(cds))
    latencies = legitimate_calls_under_slow_clients(f"http://{host}:8080", host, 8080, 4)
    assert latencies.count(None) >= len(latencies) // 2, latencies
