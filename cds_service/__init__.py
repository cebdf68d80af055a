"""CDS Hooks 2.0.1 service for vitamin B12 deficiency.

Layers (imports point inward only): ``web`` -> ``cdshooks`` -> ``fhir`` -> ``domain``.
``storage`` is infrastructure used by ``cdshooks``. Nothing here imports ``hooks``.
"""

__version__ = "0.1.0"
