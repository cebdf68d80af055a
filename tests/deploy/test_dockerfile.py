"""The image is built the way ``make run`` builds the service (Docker is not available here, so
the steps are compared, not run): the same virtual environment, pip upgrade, package install,
``var/`` directory and ``cds-service serve`` entry point, in the same order. It runs as a
non-root user, production profile, with a HEALTHCHECK on /healthz."""

from __future__ import annotations

import re

from .files import ROOT, dockerfile_instructions, exec_form, recipe_of

DOCKERFILE = dockerfile_instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
MAKE_RUN = recipe_of("run", (ROOT / "Makefile").read_text(encoding="utf-8"))
DOCKER_VENV = "/opt/venv"


def normalise(command: str, venv: str) -> str:
    """The same step, whatever the venv's path, pip's verbosity, an env prefix or ``-e``."""
    command = re.sub(r"^(\w+=\S+\s+)+", "", command.strip())  # VAR=value prefixes
    command = command.replace(f"{venv}/bin/", "").replace(venv, "<venv>")
    command = re.sub(r"^python3\b", "python", command)
    command = command.replace(" --quiet", "").replace(" -e .", " .")
    return " ".join(command.split())


def make_steps() -> list[str]:
    steps = [normalise(c, ".venv") for c in MAKE_RUN if not c.startswith("touch ")]
    assert steps, "the Makefile's run target has no recipe"
    return steps


def docker_run_steps() -> list[str]:
    steps = []
    for keyword, arguments in DOCKERFILE:
        if keyword == "RUN":
            steps += [normalise(part, DOCKER_VENV) for part in arguments.split("&&")]
    return steps


def docker_cmd() -> list[str]:
    (cmd,) = [arguments for keyword, arguments in DOCKERFILE if keyword == "CMD"]
    return exec_form(cmd)


def options(argv: list[str]) -> dict[str, str]:
    return {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}


def test_make_run_is_what_the_test_expects():
    steps = make_steps()
    assert steps[0] == "python -m venv <venv>"
    assert steps[-1].startswith("cds-service serve ")


def test_the_image_installs_the_service_with_make_runs_steps_in_order():
    *installing, _serve = make_steps()
    docker = docker_run_steps()
    positions = []
    for step in installing:
        assert step in docker, f"`make run` does `{step}`; the Dockerfile does not"
        positions.append(docker.index(step))
    assert positions == sorted(positions), "the Dockerfile runs make run's steps out of order"


def test_the_image_serves_with_make_runs_entry_point():
    serve = make_steps()[-1].split()
    cmd = docker_cmd()
    assert cmd[:2] == serve[:2] == ["cds-service", "serve"]
    assert set(options(cmd)) == set(options(serve)) == {"--host", "--port"}
    assert options(cmd)["--host"] == "0.0.0.0"  # reachable from outside the container
    (expose,) = [arguments for keyword, arguments in DOCKERFILE if keyword == "EXPOSE"]
    assert options(cmd)["--port"] == expose


def test_the_image_copies_what_pip_install_needs():
    copied = " ".join(arguments for keyword, arguments in DOCKERFILE if keyword == "COPY")
    for needed in ("setup.cfg", "pyproject.toml", "README.md", "cds_service", "hooks"):
        assert needed in copied, needed
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert not {"setup.cfg", "pyproject.toml", "README.md", "cds_service", "hooks"} & set(ignored)


def test_the_image_is_slim_python_and_runs_as_a_non_root_user():
    assert DOCKERFILE[0] == ("FROM", "python:3.11-slim")
    keywords = [keyword for keyword, _ in DOCKERFILE]
    users = [arguments for keyword, arguments in DOCKERFILE if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert "RUN" not in keywords[last_user:], "a RUN after USER would run as that user anyway"
    assert keywords.index("CMD") > last_user


def test_the_image_runs_the_production_profile():
    environment = " ".join(arguments for keyword, arguments in DOCKERFILE if keyword == "ENV")
    assert "CDS_PROFILE=production" in environment.split()


def test_the_healthcheck_asks_healthz_with_the_standard_library():
    (check,) = [arguments for keyword, arguments in DOCKERFILE if keyword == "HEALTHCHECK"]
    command = exec_form(check.split("CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "/healthz" in command[2]
    compile(command[2], "HEALTHCHECK", "exec")  # valid Python
