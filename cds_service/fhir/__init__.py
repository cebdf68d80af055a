"""FHIR in and out: R4 parsing (fhir.resources.R4B), extraction into domain facts, dates,
building suggested resources, and the FHIR client."""
