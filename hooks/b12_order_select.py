"""``b12-order-select``: the same advice while the clinician picks orders, focused on the
``selections`` (rule book §4)."""

from cds_service.cdshooks.service import ServiceDefinition
from cds_service.domain.engine import HookKind

from .prefetch import templates

SERVICE = ServiceDefinition(
    id="b12-order-select",
    hook=HookKind.ORDER_SELECT,
    title="Vitamin B12: check selected orders",
    description=(
        "Warns as soon as folic acid or a B12 product is selected for a patient whose B12 status "
        "makes it unsafe or unsuitable, and suggests the right order instead."
    ),
    prefetch=templates(),
)
