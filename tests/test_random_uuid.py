"""Card, suggestion and ledger ids (``application.random_uuid``): what ``uuid.uuid4()`` makes,
written without building a ``uuid.UUID``."""

from __future__ import annotations

import uuid

from cds_service.cdshooks.application import random_uuid

VERSION_AND_VARIANT = (0xF000 << 64) | (0xC000 << 48)


def test_each_is_a_version_4_rfc_uuid_written_as_uuid_writes_it():
    values = [random_uuid() for _ in range(2000)]
    for value in values:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == value
    assert len(set(values)) == len(values)


def test_every_other_bit_is_random():
    values = [uuid.UUID(random_uuid()).int for _ in range(2000)]
    always_set = ~0
    ever_set = 0
    for value in values:
        always_set &= value
        ever_set |= value
    random_bits = ((1 << 128) - 1) & ~VERSION_AND_VARIANT
    # Each of the 122 random bits was 0 at least once and 1 at least once.
    assert always_set & random_bits == 0
    assert ever_set & random_bits == random_bits
