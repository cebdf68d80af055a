"""Clinical scenarios: ``definitions`` describes them in Python, ``build`` writes
``fixtures/scenarios/<slug>/`` (docs/architecture.md, "Fixtures are scenarios")."""
