"""``b12-patient-view``: every B12 finding for the patient in the chart, most urgent first.

The patient is required here (there is nothing safe to say about an unknown patient when no
order is at stake); everything else degrades with a note on the card.
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
