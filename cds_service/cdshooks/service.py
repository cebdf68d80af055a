"""A CDS service declared once: discovery, prefetch checking and routing read the declaration.

``hooks/b12_order_sign.py`` declares ``ServiceDefinition(id, hook, title, description,
prefetch={key: Prefetch(template, required, provides)})``. Every service makes the same
engine call with its own hook; the composition root (``bootstrap``) hands the registry to the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cds_service.domain.engine import HookKind
from cds_service.domain.vocabulary import DataCategory


@dataclass(frozen=True)
class Prefetch:
    template: str
    provides: DataCategory
    #: A required key that cannot be obtained answers 412; an optional one degrades the cards.
    required: bool = False


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: HookKind
    title: str
    description: str
    prefetch: Mapping[str, Prefetch] = field(default_factory=dict)
    usage_requirements: str | None = None

    def discovery(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "id": self.id,
            "hook": self.hook.value,
            "title": self.title,
            "description": self.description,
            "prefetch": {key: p.template for key, p in self.prefetch.items()},
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry


class Registry:
    """The services, sorted by id (deterministic discovery, docs/protocol.md "Endpoints")."""

    def __init__(self, services: Iterable[ServiceDefinition]) -> None:
        self._services: dict[str, ServiceDefinition] = {}
        for service in services:
            if service.id in self._services:
                raise ValueError(f"duplicate service id {service.id!r}")
            self._services[service.id] = service
        if not self._services:
            raise ValueError("at least one service is required (the sandbox rejects an empty list)")

    def __iter__(self):
        return iter(sorted(self._services.values(), key=lambda s: s.id))

    def get(self, service_id: str) -> ServiceDefinition | None:
        return self._services.get(service_id)

    def __contains__(self, service_id: object) -> bool:
        return service_id in self._services
