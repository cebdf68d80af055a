"""Client profiles: the scenario corpus through each profile, every card valid for
the client it is shaped for; the Epic topic-code mapping; feedback in Epic's forms; the
trusted-clients file's profile entries."""

from __future__ import annotations

import copy
import re
from datetime import datetime
from pathlib import Path

import pytest

from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.auth import AuthenticatedClient
from cds_service.cdshooks.cards import (
    RULE_TITLES,
    RXNORM_OID,
    profile_problems,
    rule_id_of,
    topic_code,
)
from cds_service.cdshooks.clients import (
    ORACLE_JKU_LIST_URL,
    PROFILES,
    TrustedClientsError,
    parse_trusted_clients,
)
from cds_service.cdshooks.schemas import CardSchema, ResponseSchema
from hooks import registry
from tests.conftest import FIXTURES, load_json
from tests.scenarios.build import strip_uuids
from tests.test_conformance import no_empty_values

SCENARIO_DIR = FIXTURES / "scenarios"
SLUGS = sorted(p.name for p in SCENARIO_DIR.iterdir() if p.is_dir())
KEYS = {"issuer": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}
PREFERENCE_OID = "urn:oid:1.2.840.114350.1.13.0.1.7.2.698288"

ENTRIES = {
    "standard": {},
    "epic": {
        "profile": "epic",
        "audiences": ["https://cds.example.org/cds-services"],
        "preference_codes": {
            "medications": {
                "317106": {"system": PREFERENCE_OID, "code": "210001", "display": "OHCBL INJ"}
            },
            "labs": {"2132-9": {"system": PREFERENCE_OID, "code": "LAB1001", "display": "B12"}},
        },
    },
    "oracle": {"profile": "oracle", "link_hosts": ["www.nice.org.uk"]},
}


def trusted(name: str):
    return parse_trusted_clients({"clients": [{**KEYS, **ENTRIES[name]}]})[0]


def caller(name: str) -> AuthenticatedClient:
    client = trusted(name)
    return AuthenticatedClient(issuer=client.issuer, trusted=client)


def answer(core: CdsApplication, slug: str, client=None) -> dict:
    folder = SCENARIO_DIR / slug
    meta = load_json(folder / "scenario.json")
    request = load_json(folder / "request.json")
    now = datetime.fromisoformat(meta["evaluationTime"])
    return core.invoke(meta["service"], copy.deepcopy(request), now=now, client=client)


@pytest.fixture
def plain(uuids):
    return CdsApplication(registry=registry(), new_uuid=uuids)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_scenario_card_is_valid_for_every_profile(plain, profile):
    client = caller(profile)
    checked = 0
    for slug in SLUGS:
        response = answer(plain, slug, client)
        # What is sent is what the response schema dumps: its fields only, none empty.
        assert ResponseSchema().dump(response) == response, slug
        # Optional fields omitted, never empty: in suggested resources too, which the
        # response is not compacted into (they are built without empty values).
        assert no_empty_values(response), slug
        for card in response["cards"]:
            assert CardSchema().validate(card) == {}, (slug, card)
            assert profile_problems(card, client.trusted) == [], slug
            checked += 1
    assert checked >= 60


def test_standard_profile_is_todays_behaviour(plain):
    for slug in SLUGS:
        expected = load_json(SCENARIO_DIR / slug / "expected.json")
        assert strip_uuids(answer(plain, slug, caller("standard"))) == expected, slug


def test_the_checks_catch_a_standard_card_sent_to_epic(plain):
    """The validity check itself can fail: the standard replace card breaks Epic's rules."""
    card = answer(plain, "cyanocobalamin-im-egfr-59")["cards"][0]
    problems = profile_problems(card, trusted("epic"))
    assert any("selectionBehavior" in p for p in problems)
    assert any("2 actions" in p for p in problems)
    assert any("topic.code" in p for p in problems)
    assert any(RXNORM_OID in p for p in problems)


def test_epic_replace_becomes_a_delete_and_a_create_each_worded_alone(plain):
    card = answer(plain, "cyanocobalamin-im-egfr-59", caller("epic"))["cards"][0]
    assert card["selectionBehavior"] == "any"
    delete, create = card["suggestions"]
    assert [a["type"] for a in delete["actions"]] == ["delete"]
    assert [a["type"] for a in create["actions"]] == ["create"]
    assert delete["label"].startswith("Delete the drafted order: ")
    assert create["label"].startswith("Order hydroxocobalamin 1 mg IM")
    assert delete["isRecommended"] is True and create["isRecommended"] is True
    assert "accept both the removal and the new order" in card["detail"]
    codings = create["actions"][0]["resource"]["medicationCodeableConcept"]["coding"]
    # The site's preference-list code first, then RxNorm under both systems.
    assert codings[0] == {"system": PREFERENCE_OID, "code": "210001", "display": "OHCBL INJ"}
    assert {(c["system"], c["code"]) for c in codings[1:]} == {
        ("http://www.nlm.nih.gov/research/umls/rxnorm", "317106"),
        (RXNORM_OID, "317106"),
    }
    assert "**Set the dose by hand**" in card["detail"]
    assert "1 mg IM on alternate days" in card["detail"]


def test_epic_topic_code_is_letters_and_digits_and_the_rule_id_stays(plain):
    card = answer(plain, "folic-acid-with-b12-118-megaloblastic", caller("epic"))["cards"][0]
    topic = card["source"]["topic"]
    assert topic["code"] == "FolateBeforeB12"
    assert "(folate-before-b12)" in topic["display"]
    assert rule_id_of(topic["code"]) == "folate-before-b12"


@pytest.mark.parametrize("rule_id", sorted(RULE_TITLES))
def test_topic_code_mapping_is_reversible_for_every_rule(rule_id):
    code = topic_code(rule_id)
    assert re.fullmatch(r"[A-Za-z0-9]{1,100}", code)
    assert rule_id_of(code) == rule_id
    assert rule_id_of(code.upper()) == rule_id  # an EHR that changes case loses nothing
    assert rule_id_of(rule_id) == rule_id


def test_epic_lab_without_preference_code_becomes_a_line_to_order_by_hand(plain):
    """Epic orders labs only by preference-list code: an unmapped LOINC test is not offered
    as a one-click order, and the card says what to order instead."""
    response = answer(plain, "metformin-4-months-no-b12", caller("epic"))
    card = response["cards"][0]
    codes = [
        c["code"]
        for s in card.get("suggestions", [])
        for a in s["actions"]
        for c in a["resource"]["code"]["coding"]
    ]
    assert "LAB1001" in codes  # the mapped B12 test
    standard = answer(plain, "metformin-4-months-no-b12")["cards"][0]
    loincs = {
        c["code"]
        for s in standard["suggestions"]
        for a in s["actions"]
        for c in a["resource"]["code"]["coding"]
    }
    for loinc in loincs - {"2132-9"}:
        assert f"(LOINC {loinc})" in card["detail"]


def test_oracle_links_only_to_registered_hosts(plain):
    standard = answer(plain, "cyanocobalamin-im-egfr-59")["cards"]
    shaped = answer(plain, "cyanocobalamin-im-egfr-59", caller("oracle"))["cards"]
    assert any(c["source"].get("url") for c in standard)
    for card in shaped:
        for url in [c["url"] for c in card.get("links", [])] + [card["source"].get("url")]:
            assert url is None or "//www.nice.org.uk/" in url


def test_epic_feedback_is_keyed_on_the_rule_id(core):
    response = answer(core, "folic-acid-with-b12-118-megaloblastic", caller("epic"))
    card = response["cards"][0]
    assert card["source"]["topic"]["code"] == "FolateBeforeB12"
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": "2026-06-15T12:05:00Z",
                "overrideReasons": {
                    "reason": {"system": "https://x.example/r", "code": "not-relevant"},
                    "userComment": ["pregnant, planned"],
                },
            }
        ]
    }
    assert core.feedback("b12-order-sign", body)["stored"] == 1
    (report,) = [r for r in core.feedback_report() if r.overridden]
    assert report.rule_id == "folate-before-b12"


def test_trusted_clients_entry_sets_profile_and_capabilities_one_by_one():
    (client,) = parse_trusted_clients(
        {"clients": [{**KEYS, "profile": "epic", "capabilities": {"rxnorm_oid": False}}]}
    )
    assert client.capabilities.selection_any and not client.capabilities.rxnorm_oid
    (oracle,) = parse_trusted_clients(
        {
            "clients": [
                {"issuer": "https://cds-hooks.cerner.com", "profile": "oracle", "link_hosts": []}
            ]
        }
    )
    assert oracle.jku_list_url == ORACLE_JKU_LIST_URL and oracle.link_hosts == ()


@pytest.mark.parametrize(
    "entry, message",
    [
        ({**KEYS, "profile": "cerner"}, "profile"),
        ({**KEYS, "capabilities": {"teleport": True}}, "capabilities"),
        ({**KEYS, "capabilities": {"rxnorm_oid": "yes"}}, "capabilities"),
        ({"issuer": "https://cds-hooks.cerner.com", "profile": "oracle"}, "link_hosts"),
        ({**KEYS, "link_hosts": ["https://www.nice.org.uk/"]}, "link_hosts"),
        ({**KEYS, "audiences": ["not a url"]}, "audiences"),
        ({**KEYS, "preference_codes": {"labs": {"2132-9": {"code": "X"}}}}, "preference_codes"),
        ({"issuer": "https://ehr.example.org"}, "jwks_url"),
    ],
)
def test_bad_profile_entries_name_the_field(entry, message):
    with pytest.raises(TrustedClientsError, match=message):
        parse_trusted_clients({"clients": [entry]})


GUIDE = Path(__file__).resolve().parents[1] / "docs" / "ehr-vendors.md"


def test_the_guide_documents_the_mapping_and_each_profile():
    guide = GUIDE.read_text(encoding="utf-8")
    for needle in ("profile: epic", "profile: oracle", "jku_list_url", "link_hosts"):
        assert needle in guide
    for rule_id in RULE_TITLES:
        assert f"| `{rule_id}` | `{topic_code(rule_id)}` |" in guide
    for name in PROFILES["epic"].__dataclass_fields__:
        assert f"`{name}`" in guide


def test_the_prefetch_table_an_analyst_types_in_is_the_services_discovery():
    """Epic analysts copy the guide, not discovery: a changed template must change the guide."""
    guide = GUIDE.read_text(encoding="utf-8")
    for service in registry():
        for key, prefetch in service.prefetch.items():
            assert f"{key}: {prefetch.template}\n" in guide, (service.id, key)


def test_the_guides_trusted_clients_entries_are_accepted():
    import yaml

    blocks = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    profiles = set()
    for block in blocks:
        for client in parse_trusted_clients(yaml.safe_load(block)):
            profiles.add(client.profile)
    assert profiles == {"epic", "oracle"}
