"""The CDS Hooks protocol: schemas, services, prefetch, cards, feedback, errors."""
