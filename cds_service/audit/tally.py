"""What a task returns: counts only, never a patient id; merged by the driver."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: A row key: (hook, rule id, indicator, mode). Rule "(any)" counts patients with any card.
Key = tuple[str, str, str, str]
ANY_RULE = "(any card)"


@dataclass
class Tally:
    #: Patients per (hook, rule id, indicator, mode).
    patients: Counter[Key] = field(default_factory=Counter)
    #: Invocations per hook (patient-view: every patient; order-sign: folic acid re-orders).
    invocations: Counter[str] = field(default_factory=Counter)
    #: Input accounting: lines, resources per type, unreadable lines, resources without a
    #: patient, resources of a patient absent from the Patient file, malformed (skipped).
    counts: Counter[str] = field(default_factory=Counter)
    #: Rules that raised, per rule id (never the message: it could quote patient data).
    failed_rules: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Tally) -> Tally:
        self.patients.update(other.patients)
        self.invocations.update(other.invocations)
        self.counts.update(other.counts)
        self.failed_rules.update(other.failed_rules)
        return self

    @property
    def population(self) -> int:
        return self.counts["patients"]
