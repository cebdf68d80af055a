"""Pure clinical logic: facts, units, codes, thresholds, rules, findings. Standard library only."""
