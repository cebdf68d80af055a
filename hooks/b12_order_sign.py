"""``b12-order-sign``: B12 advice on the orders being signed.

Cards only for what concerns the draft orders, or is warning/critical (rule book §4).
Every prefetch key is optional: a folic-acid order must still get its card when labs are out
of reach (docs/protocol.md, "Prefetch": say something safe rather than fail the signing workflow).
"""

from cds_service.cdshooks.service import ServiceDefinition
from cds_service.domain.engine import HookKind

from .prefetch import templates

SERVICE = ServiceDefinition(
    id="b12-order-sign",
    hook=HookKind.ORDER_SIGN,
    title="Vitamin B12: check orders being signed",
    description=(
        "Stops folic acid before B12 deficiency is treated, checks B12 regimens, routes and renal "
        "safety, and suggests the tests and treatment that the B12 results call for."
    ),
    prefetch=templates(),
    usage_requirements="Send draftOrders with MedicationRequest and ServiceRequest resources.",
)
