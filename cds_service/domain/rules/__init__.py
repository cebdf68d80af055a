"""One module per rule of shared/clinical/RULES.md section 3, named after its id.

Each module defines ``ID``, ``TITLE``, ``SOURCES`` (``domain.sources.Source``), ``SETTINGS``
(the site-policy keys it reads, for ``cds-service rules``) and ``evaluate(picture)`` returning
a ``Finding`` or ``None``. The order below is the tie-break order of cards of equal urgency.
"""

from __future__ import annotations

from types import ModuleType

from . import lab_unit_unrecognised

ALL_RULES: tuple[ModuleType, ...] = (lab_unit_unrecognised,)
