"""Content: one module per CDS service. ``REGISTRY`` is what the app factory receives.

Adding a service = one module + one line here + a scenario under fixtures/scenarios/.
"""

from cds_service.cdshooks.service import Registry

from . import b12_order_select, b12_order_sign, b12_patient_view

SERVICES = (b12_order_sign.SERVICE, b12_order_select.SERVICE, b12_patient_view.SERVICE)


def registry() -> Registry:
    return Registry(SERVICES)
