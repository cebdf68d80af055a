"""Population audit: the rules over a Bulk Data ``$export`` before the first card is shown.

``cds-service audit`` reads NDJSON (``Patient``, ``Observation``, ``MedicationStatement``,
``MedicationRequest``, ``Condition``; optionally gzip), groups resources by patient through
on-disk partitions, and evaluates each patient's chart with the service's own extraction and
service handlers under the site policy: patient-view for everyone, order-sign for patients
with active folic acid (as if it were re-ordered). Output is counts only.

- ``ndjson``: reading exports in chunks, and the patient a resource belongs to;
- ``partition``: phase 1, a chunk's lines into K partition files by a hash of the patient;
- ``evaluate``: phase 2, one partition's patients through the services;
- ``tally``: the counts a task returns, merged by the driver;
- ``run``: the driver, on local processes (every core by default);
- ``cluster``: the same tasks on a Dask distributed scheduler;
- ``report``: CSV, JSON summary and SVG chart;
- ``synth``: a seeded synthetic population in the same format.
"""
