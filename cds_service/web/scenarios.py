"""The synthetic scenarios the home page's Try it offers (fixtures/scenarios/<slug>/).

Each folder holds ``scenario.json`` (title, shows, service, evaluationTime, rules) and
``request.json`` (a body anyone can POST). Only these synthetic files ever reach the page: a
slug is looked up in the list read at start-up, never joined onto a path from the request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger("cds_service.web.scenarios")

#: Shown first and selected by default: the card a newcomer should see.
FEATURED = "folic-acid-with-b12-118-megaloblastic"

#: Where the scenarios live in a source checkout (``make run``, ``pip install -e .``).
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"


@dataclass(frozen=True)
class Scenario:
    slug: str
    title: str
    shows: str
    service: str
    evaluation_time: str
    rules: tuple[str, ...]
    request_path: Path

    @property
    def now(self) -> datetime:
        moment = datetime.fromisoformat(self.evaluation_time.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    def request_bytes(self) -> bytes:
        return self.request_path.read_bytes()

    def request(self) -> Any:
        return json.loads(self.request_bytes())


def load_scenarios(directory: Path, services: Iterable[str]) -> dict[str, Scenario]:
    """Every readable scenario for a known service, the featured one first, then by title.
    A broken folder is skipped with its name logged: the page still serves the others."""
    known = set(services)
    found: list[Scenario] = []
    if not directory.is_dir():
        return {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        try:
            meta = json.loads((folder / "scenario.json").read_text(encoding="utf-8"))
            scenario = Scenario(
                slug=folder.name,
                title=str(meta["title"]),
                shows=str(meta.get("shows", "")),
                service=str(meta["service"]),
                evaluation_time=str(meta["evaluationTime"]),
                rules=tuple(str(r) for r in meta.get("rules") or ()),
                request_path=folder / "request.json",
            )
            _ = scenario.now
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("scenario skipped", extra={"scenario": folder.name})
            continue
        if scenario.service in known and scenario.request_path.is_file():
            found.append(scenario)
    found.sort(key=lambda s: (s.slug != FEATURED, s.title.lower()))
    return {s.slug: s for s in found}
