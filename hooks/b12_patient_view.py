"""``b12-patient-view``: every B12 finding for the patient in the chart, most urgent first.

The patient is required here; without it (Oracle Health's fallback often cannot fetch it) the
cards that need neither age nor sex are still answered, each saying what was not evaluated,
unless the client's ``degrade_without_patient`` capability is off. 412 only when no data at
all could be obtained. Everything else degrades with a note on the card.
"""

from cds_service.cdshooks.service import ServiceDefinition
from cds_service.domain.engine import HookKind

from .prefetch import templates

SERVICE = ServiceDefinition(
    id="b12-patient-view",
    hook=HookKind.PATIENT_VIEW,
    title="Vitamin B12: deficiency review",
    description=(
        "Reviews B12 results, risk factors (metformin, acid suppression, malabsorption, age), "
        "treatment and monitoring, and suggests tests or treatment where they are due."
    ),
    prefetch=templates(patient_required=True),
)
