"""Clinical scenarios: ``definitions`` describes them in Python, ``build`` writes
``fixtures/scenarios/<slug>/`` (ARCHITECTURE.md, "Fixtures are scenarios")."""
