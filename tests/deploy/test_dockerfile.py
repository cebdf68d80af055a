"""The Dockerfile, read without Docker (tests/deploy/test_images.py builds and runs it):
two stages, the builder installing only hashed, locked dependencies and the service's own
wheel; a runtime stage with nothing but that virtual environment, a non-root user, the
SQLite directory as a volume and a health check on the port the service listens on."""

from __future__ import annotations

import re

from packaging.requirements import Requirement

from cds_service.config import load_settings

from .files import ROOT, dockerfile_instructions, exec_form

DOCKERFILE = dockerfile_instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
LOCK = (ROOT / "requirements.lock").read_text(encoding="utf-8")


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, arguments in DOCKERFILE:
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, arguments))
    return result


def of(stage, keyword: str) -> list[str]:
    return [arguments for k, arguments in stage if k == keyword]


def locked() -> dict[str, list[str]]:
    """name -> hashes, from the lock file's ``name==version --hash=...`` entries."""
    entries: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", re.sub(r"\\\n", " ", LOCK)):
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        if match:
            entries[match[1].lower().replace("_", "-")] = re.findall(r"--hash=(sha256:\w+)", block)
    return entries


def test_two_stages_from_python_3_11_slim():
    builder, runtime = stages()
    assert builder[0] == ("FROM", "python:3.11-slim AS builder")
    assert runtime[0] == ("FROM", "python:3.11-slim")


def test_the_builder_installs_only_hashed_locked_requirements():
    builder, _ = stages()
    runs = " ".join(of(builder, "RUN"))
    assert "--require-hashes" in runs and "-r /build/requirements.lock" in runs
    # The service itself: its wheel, built without fetching anything, installed alone.
    assert "--no-build-isolation" in runs and "--no-deps --no-index /build/wheels/" in runs
    entries = locked()
    assert entries and all(hashes for hashes in entries.values())
    assert {"setuptools", "wheel"} <= set(entries)  # the build backend is locked too


def test_the_builder_compiles_the_hot_modules_or_fails():
    builder, _ = stages()
    runs = " ".join(of(builder, "RUN"))
    assert "apt-get install" in runs and " gcc " in f"{runs} "
    # After the wheel is installed: the build stops if cds_service/compiled.py's modules
    # would run from source, and the build tools do not reach the runtime stage.
    wheel_run = next(run for run in of(builder, "RUN") if "pip wheel" in run)
    assert wheel_run.index("python -m cds_service.compiled") > wheel_run.index(
        "/build/wheels/*.whl"
    )
    assert "mypy" in wheel_run.split("pip uninstall", 1)[1]
    assert "mypy" in locked()  # the build requirement is locked with the rest


def test_the_lock_covers_every_dependency_the_package_declares():
    setup = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    block = setup.split("install_requires =", 1)[1].split("\n[", 1)[0]
    block = block.split("\n\n", 1)[0]
    declared = [
        Requirement(line.strip())
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    entries = locked()
    for requirement in declared:
        name = requirement.name.lower().replace("_", "-").replace(".", "-")
        assert name in entries, f"{requirement.name} is not in requirements.lock"
        (version,) = re.findall(rf"(?im)^{re.escape(name)}==(\S+)", LOCK.replace("_", "-"))
        assert requirement.specifier.contains(version), (requirement, version)


def test_the_runtime_stage_has_only_the_virtual_environment():
    _, runtime = stages()
    copies = of(runtime, "COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    after = runtime.index(("COPY", copies[0]))
    assert "RUN" not in [k for k, _ in runtime[after:]]


def test_it_runs_as_a_non_root_user():
    _, runtime = stages()
    (user,) = of(runtime, "USER")
    assert user.split(":")[0] not in ("root", "0")
    keywords = [k for k, _ in runtime]
    user_at = keywords.index("USER")
    assert "RUN" not in keywords[user_at:]


def test_the_default_sqlite_database_lives_in_a_declared_volume(tmp_path):
    _, runtime = stages()
    environment = dict(
        pair.split("=", 1) for line in of(runtime, "ENV") for pair in line.split() if "=" in pair
    )
    assert environment["CDS_PROFILE"] == "production"
    url = environment["CDS_DATABASE_URL"]
    assert url.startswith("sqlite:////")
    directory = url.removeprefix("sqlite:///").rsplit("/", 1)[0]
    assert of(runtime, "VOLUME") == [directory]
    # The service refuses a SQLite directory that does not exist: the image creates it.
    assert any(f"mkdir -p {directory} " in f"{line} " for line in of(runtime, "RUN"))
    elsewhere = url.replace(directory, str(tmp_path))  # this machine has no /srv/cds/var
    assert load_settings({"CDS_DATABASE_URL": elsewhere}).database_url == elsewhere


def test_the_healthcheck_asks_healthz_on_the_configured_port():
    (check,) = [arguments for keyword, arguments in DOCKERFILE if keyword == "HEALTHCHECK"]
    command = exec_form(check.split("CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2] and "CDS_PORT" in command[2]
    compile(command[2], "HEALTHCHECK", "exec")  # valid Python


def test_the_server_listens_on_cds_port():
    (cmd,) = [arguments for keyword, arguments in DOCKERFILE if keyword == "CMD"]
    argv = exec_form(cmd)
    assert argv[:2] == ["cds-service", "serve"] and "--port" not in argv  # CDS_PORT decides
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    (expose,) = [arguments for keyword, arguments in DOCKERFILE if keyword == "EXPOSE"]
    assert expose == "8080" and load_settings({}).port == 8080


def test_the_build_context_holds_what_the_build_copies():
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    for needed in ("requirements.lock", "setup.cfg", "pyproject.toml", "README.md"):
        assert needed not in ignored and (ROOT / needed).exists()
    assert {"cds_service", "hooks"}.isdisjoint(ignored)
    assert {"tests", ".git", ".venv", "cds.env", "secrets"} <= ignored
    assert {"*.so", "**/*.so"} <= ignored  # an editable install's extensions stay out
