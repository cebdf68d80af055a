"""Silent mode (site policy ``rules.<id>.mode``): a silent rule is evaluated and recorded in the
ledger as silent, never returned; supersession behaves as if it were off for visible cards;
the feedback report shows shown, silent and firing rates per 1,000 invocations."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from cds_service import cli
from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.tally import InvocationTally
from cds_service.domain.catalogue import catalogue
from cds_service.domain.policy import Policy, PolicyError, RuleMode
from cds_service.domain.rules import ALL_RULES
from cds_service.storage import open_store
from cds_service.web import create_app
from hooks import registry
from tests.builders import NOW
from tests.test_scenarios import SLUGS, card_rules, evaluation_time, scenario


def policy_with(**modes: str) -> Policy:
    return Policy.from_mapping(
        {"rules": {rule.replace("_", "-"): {"mode": mode} for rule, mode in modes.items()}}
    )


# --- site policy -----------------------------------------------------------------------------
def test_modes_default_to_active_and_are_read_from_site_policy():
    policy = policy_with(pregnancy_b12="silent", b12_screening_due="off", b12_cause_workup="active")
    assert policy.mode_of("pregnancy-b12") is RuleMode.SILENT
    assert policy.mode_of("b12-screening-due") is RuleMode.OFF
    assert policy.mode_of("b12-cause-workup") is RuleMode.ACTIVE
    assert policy.mode_of("folate-before-b12") is RuleMode.ACTIVE
    assert Policy().mode_of("pregnancy-b12") is RuleMode.ACTIVE
    assert policy.as_dict()["rules"] == {
        "b12-screening-due": {"mode": "off"},
        "pregnancy-b12": {"mode": "silent"},
    }


@pytest.mark.parametrize(
    "rules, message",
    [
        ({"no-such-rule": {"mode": "silent"}}, "rules.no-such-rule"),
        ({"pregnancy-b12": {"mode": "loud"}}, "rules.pregnancy-b12.mode"),
        ({"pregnancy-b12": {"mode": ["silent"]}}, "rules.pregnancy-b12.mode"),
        ({"pregnancy-b12": {"silent": True}}, "rules.pregnancy-b12.silent"),
        ({"pregnancy-b12": "silent"}, "rules.pregnancy-b12"),
        (["pregnancy-b12"], "'rules'"),
    ],
)
def test_a_wrong_mode_is_an_error_naming_the_key(rules, message):
    with pytest.raises(PolicyError, match=message.replace(".", r"\.")):
        Policy.from_mapping({"rules": rules})


# --- over the scenario corpus ----------------------------------------------------------------
def _invoke(slug: str, policy: Policy, tmp_path, name: str):
    request, meta, _ = scenario(slug)
    store = open_store(f"sqlite:///{tmp_path}/{name}.sqlite3")
    core = CdsApplication(
        registry=registry(),
        store=store,
        policy=policy,
        clock=lambda: evaluation_time(meta),
        tally=InvocationTally(store, flush_every=1),
    )
    from cds_service.config import load_settings

    settings = load_settings(
        {"CDS_PROFILE": "development", "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/{name}.sqlite3"}
    )
    client = create_app(settings, core).test_client()
    response = client.post(f"/cds-services/{meta['service']}", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert core.flush_ledger()  # the ledger is written in the background
    core.tally.flush()  # so is the invocation count
    return response.get_json(), store


@pytest.mark.parametrize("slug", [s for s in SLUGS if scenario(s)[1]["rules"]])
def test_silent_rules_never_appear_in_a_response(slug, tmp_path):
    """Each rule the scenario shows, made silent: its card is gone, the visible cards are
    exactly those of the rule switched off (no supersession by a silent rule), and the ledger
    holds what it would have shown, marked silent."""
    _, meta, _ = scenario(slug)
    for index, rule_id in enumerate(sorted(set(meta["rules"]))):
        silent_policy = Policy.from_mapping({"rules": {rule_id: {"mode": "silent"}}})
        off_policy = Policy.from_mapping({"rules": {rule_id: {"mode": "off"}}})
        body, store = _invoke(slug, silent_policy, tmp_path, f"silent{index}")
        off_body, _ = _invoke(slug, off_policy, tmp_path, f"off{index}")
        assert rule_id not in card_rules(body)
        assert card_rules(body) == card_rules(off_body)
        report = {r.rule_id: r for r in store.feedback_report()}
        assert report[rule_id].silent == meta["rules"].count(rule_id)
        assert report[rule_id].issued == 0
        assert report[rule_id].invocations == 1
        shown = {r.rule_id: r.issued for r in report.values() if r.issued}
        assert shown == {r: card_rules(body).count(r) for r in set(card_rules(body))}


def test_every_rule_silent_answers_no_card_over_the_corpus(tmp_path):
    everything = Policy.from_mapping({"rules": {r.id: {"mode": "silent"} for r in ALL_RULES}})
    recorded = 0
    for index, slug in enumerate(SLUGS):
        body, store = _invoke(slug, everything, tmp_path, f"all{index}")
        assert body["cards"] == []
        recorded += sum(r.silent for r in store.feedback_report())
    assert recorded > len(SLUGS) // 2  # they were evaluated


def test_a_silent_rule_does_not_supersede_a_visible_one(tmp_path):
    """folate-before-b12 supersedes pregnancy-b12 and others when it fires; silent, it must
    leave them shown."""
    slug = next(
        s
        for s in SLUGS
        if scenario(s)[1]["rules"][:1] == ["folate-before-b12"]
        and "b12-deficiency-untreated" not in scenario(s)[1]["rules"]
    )
    body, _ = _invoke(slug, policy_with(folate_before_b12="silent"), tmp_path, "sup")
    off, _ = _invoke(slug, policy_with(folate_before_b12="off"), tmp_path, "sup-off")
    assert card_rules(body) == card_rules(off)


def test_off_rules_are_not_evaluated(monkeypatch, tmp_path):
    from cds_service.domain import engine

    def boom(picture):
        raise AssertionError("evaluated")

    rules = tuple(
        replace(r, evaluate=boom) if r.id == "folate-before-b12" else r for r in ALL_RULES
    )
    monkeypatch.setattr(engine, "ALL_RULES", rules)
    body, store = _invoke(
        "folic-acid-with-b12-118-megaloblastic", policy_with(folate_before_b12="off"), tmp_path, "o"
    )
    assert "folate-before-b12" not in card_rules(body)
    assert all(r.rule_id != "folate-before-b12" for r in store.feedback_report())


# --- feedback report, CLI --------------------------------------------------------------------
def test_firing_rates_per_1000_invocations(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/rates.sqlite3")
    policy = policy_with(folate_before_b12="silent")
    core = CdsApplication(
        registry=registry(),
        store=store,
        policy=policy,
        clock=lambda: NOW,
        tally=InvocationTally(store, flush_every=1000, flush_after_s=1e9),
    )
    request, meta, _ = scenario("folic-acid-with-b12-118-megaloblastic")
    for _ in range(4):
        core.invoke(meta["service"], request, now=evaluation_time(meta))
    # Not yet flushed: the report flushes first.
    report = {r.rule_id: r for r in core.feedback_report()}["folate-before-b12"]
    assert (report.issued, report.silent, report.invocations) == (0, 4, 4)
    assert report.silent_per_1000 == 1000.0
    assert report.shown_per_1000 == 0.0
    assert report.as_dict()["silent_per_1000"] == 1000.0


def test_invocation_counts_are_batched_and_kept_on_failure():
    class Flaky:
        def __init__(self):
            self.calls, self.fail = [], True

        def count_invocations(self, counts):
            from cds_service.storage import StorageError

            if self.fail:
                raise StorageError("database error: OperationalError")
            self.calls.append(dict(counts))

    store = Flaky()
    failures = []
    tally = InvocationTally(
        store,
        flush_every=3,
        flush_after_s=1e9,
        on_failure=lambda: failures.append(1),
        background=lambda work: work(),  # the write in place: no race with the asserts
    )
    day = NOW.date()
    tally.add("s", day)
    tally.add("s", day)
    assert store.calls == [] and failures == []
    tally.add("s", day)  # the batch is due: the write fails, the counts are kept
    assert failures == [1]
    store.fail = False
    tally.add("t", day)
    assert store.calls == [{("s", day): 3, ("t", day): 1}]


def test_feedback_report_cli_shows_shown_silent_and_rates(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path}/cli.sqlite3"
    monkeypatch.setenv("CDS_DATABASE_URL", url)
    store = open_store(url)
    from cds_service.storage import IssuedCard

    store.record_cards(
        [
            IssuedCard("a", "b12-patient-view", "pregnancy-b12", "warning", "h1", NOW, True),
            IssuedCard("b", "b12-patient-view", "pregnancy-b12", "warning", "h2", NOW, True),
            IssuedCard("c", "b12-patient-view", "b12-screening-due", "info", "h2", NOW),
        ]
    )
    store.count_invocations({("b12-patient-view", NOW.date()): 40})
    assert cli.main(["feedback-report"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("pregnancy-b12"))
    assert line.split()[:7] == ["pregnancy-b12", "0", "2", "0", "0", "0.0", "50.0"]
    assert "40 counted" in out
    assert cli.main(["feedback-report", "--json"]) == 0
    import json

    rows = {r["rule_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["b12-screening-due"]["shown"] == 1
    assert rows["b12-screening-due"]["shown_per_1000"] == 25.0


def test_rules_cli_and_catalogue_show_each_rules_mode(tmp_path, capsys, monkeypatch):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  pregnancy-b12: {mode: silent}\n  b12-screening-due: {mode: off}\n")
    monkeypatch.setenv("CDS_SITE_POLICY", str(policy))
    assert cli.main(["rules"]) == 0
    out = capsys.readouterr().out
    blocks = {b.split()[0]: b for b in out.split("\n\n") if b.strip()}
    assert "mode: silent" in blocks["pregnancy-b12"]
    assert "mode: off" in blocks["b12-screening-due"]
    assert "mode: active" in blocks["folate-before-b12"]
    modes = {e["id"]: e["mode"] for e in catalogue(Policy())}
    assert set(modes.values()) == {"active"} and len(modes) == len(ALL_RULES)


def test_home_page_feedback_shows_silent_and_rates(tmp_path):
    from cds_service.config import load_settings
    from cds_service.storage import IssuedCard

    url = f"sqlite:///{tmp_path}/home.sqlite3"
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  pregnancy-b12: {mode: silent}\n")
    settings = load_settings(
        {"CDS_PROFILE": "development", "CDS_DATABASE_URL": url, "CDS_SITE_POLICY": str(policy)}
    )
    store = open_store(url)
    store.record_cards(
        [IssuedCard("a", "b12-patient-view", "pregnancy-b12", "warning", "h1", NOW, True)]
    )
    store.count_invocations({("b12-patient-view", NOW.date()): 8})
    core = CdsApplication(registry=registry(), store=store, policy=settings.policy)
    page = create_app(settings, core).test_client().get("/").get_data(as_text=True)
    section = page.split('id="feedback"', 1)[1]
    assert "Silent per 1,000" in section and "8 invocations counted" in section
    row = section.split("<code>pregnancy-b12</code>", 1)[1].split("</tr>")[0]
    assert "<td>0</td><td>1</td>" in row and "<td>125.0</td>" in row
    rule = page.split('id="rule-pregnancy-b12"', 1)[1].split("</li>")[0]
    assert "silent: recorded, not shown" in rule
    assert "rule-mode" not in page.split('id="rule-folate-before-b12"', 1)[1].split("</li>")[0]


def test_a_flush_awaits_the_background_write_in_flight():
    """A report reads the counts after ``flush()``: a write already running on the background
    thread must have landed by then, not be skipped because its batch was taken."""
    release = threading.Event()

    class Slow:
        def __init__(self):
            self.calls = []

        def count_invocations(self, counts):
            release.wait(10)
            self.calls.append(dict(counts))

    store = Slow()
    tally = InvocationTally(store, flush_every=1, flush_after_s=1e9)
    day = NOW.date()
    tally.add("s", day)  # due at once: the write starts in the background and blocks
    flusher = threading.Thread(target=tally.flush)
    flusher.start()
    flusher.join(0.2)
    assert flusher.is_alive()  # waiting for the write in flight
    release.set()
    flusher.join(5)
    assert not flusher.is_alive()
    assert store.calls == [{("s", day): 1}]
