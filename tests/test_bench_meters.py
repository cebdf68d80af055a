"""The benchmark's instruction count is read from perf's CSV output, and only from a count."""

from __future__ import annotations

from bench.run import perf_counts, perf_instructions


def test_the_count_is_read_from_perf_csv_output():
    report = "\n110292,,instructions:u,18436091,100.00,,\n"
    assert perf_instructions(report) == 110292


def test_no_count_when_perf_could_not_count():
    assert perf_instructions("<not supported>,,instructions:u,0,100.00,,") is None
    assert perf_instructions("<not counted>,,instructions:u,0,0.00,,") is None
    assert perf_instructions("Error:\nNo permission to enable instructions:u event.") is None
    assert perf_instructions("") is None


def test_the_interpreted_copy_has_the_sources_and_no_extension(tmp_path):
    """``bench.compiled`` serves this copy as the uncompiled service: it must import the
    compiled modules from their Python source, whatever the checkout has built."""
    from bench.compiled import interpreted_copy
    from cds_service.compiled import MODULES

    root = interpreted_copy(tmp_path / "copy")
    for name in MODULES:
        assert (root / (name.replace(".", "/") + ".py")).is_file()
    assert (root / "hooks").is_dir()
    assert not list(root.rglob("*.so"))


def test_every_event_counted_is_read_and_an_uncounted_one_is_absent():
    report = (
        "8854123,,cycles:u,2000000,100.00,,\n"
        "6281234,,instructions:u,2000000,100.00,0.71,insn per cycle\n"
        "<not supported>,,cache-misses:u,0,100.00,,\n"
    )
    assert perf_counts(report) == {"cycles:u": 8854123, "instructions:u": 6281234}
    assert perf_instructions(report) == 6281234
