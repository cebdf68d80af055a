"""Read the deployment files the way their tools do, closely enough to check them: the
Makefile's recipes (with its variables), the Dockerfile's instructions."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def makefile_variables(text: str) -> dict[str, str]:
    variables = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Z_]+)\s*[:?]?=\s*(.*)$", line)
        if match:
            variables[match[1]] = match[2].strip()
    return variables


def expand(text: str, variables: dict[str, str]) -> str:
    for _ in range(5):  # variables may name variables
        text = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], m[0]), text)
    return text


def makefile_rules(text: str) -> dict[str, tuple[list[str], list[str]]]:
    """target -> (prerequisites, recipe lines), targets and lines expanded."""
    variables = makefile_variables(text)
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("\t") and current is not None:
            rules[current][1].append(expand(line.strip(), variables))
            continue
        match = re.match(r"^([^\s:=#][^:=]*):(?!=)(.*)$", line)
        if match and not line.startswith("."):
            current = expand(match[1].strip(), variables)
            prerequisites = expand(match[2], variables).split()
            rules[current] = (prerequisites, [])
        elif line.strip() and not line.startswith("#"):
            current = None
    return rules


def recipe_of(target: str, text: str) -> list[str]:
    """Every command ``make target`` runs on a fresh clone, prerequisites first."""
    rules = makefile_rules(text)
    done: list[str] = []
    commands: list[str] = []

    def visit(name: str) -> None:
        if name in done or name not in rules:
            return
        done.append(name)
        prerequisites, recipe = rules[name]
        for prerequisite in prerequisites:
            visit(prerequisite)
        commands.extend(line.lstrip("@") for line in recipe)

    visit(target)
    return commands


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def exec_form(arguments: str) -> list[str]:
    """A JSON-array (exec form) CMD or a shell-form one, as argv."""
    if arguments.startswith("["):
        import json

        return json.loads(arguments)
    return shlex.split(arguments)
