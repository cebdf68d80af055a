"""deploy/kubernetes/: every manifest valid against the Kubernetes JSON schemas (strict: no
unknown field), offline (kubernetes-validate ships the schemas), and saying what
docs/deployment.md says: probes on /healthz and /readyz, the hardening of the compose file,
the database password from a Secret file, a PodDisruptionBudget and an autoscaler aimed at
the Deployment, a Service in front of the pods' named port."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
import yaml

from cds_service.config import load_settings

from .files import ROOT

KUBERNETES_VERSION = "1.30"
MANIFESTS = {
    path.name: doc
    for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    if doc
}
BY_KIND = {doc["kind"]: doc for doc in MANIFESTS.values()}


def validate(document) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_each_manifest_is_valid_against_the_kubernetes_schema(name):
    validate(MANIFESTS[name])


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(livenessprobe={}),
        lambda d: d["spec"].update(replicas="three"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),
    ],
)
def test_the_validation_catches_a_broken_manifest(break_it):
    broken = copy.deepcopy(BY_KIND["Deployment"])
    break_it(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def container():
    return BY_KIND["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_the_kinds_needed_are_all_there():
    assert set(BY_KIND) == {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }


def test_probes_ask_healthz_for_liveness_and_readyz_for_readiness():
    assert container()["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container()["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container()["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    env = {e["name"]: e.get("value") for e in container()["env"]}
    assert ports["http"] == int(env["CDS_PORT"])


def test_the_pods_run_hardened_like_the_compose_replicas():
    pod = BY_KIND["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert any(m["mountPath"] == "/tmp" for m in container()["volumeMounts"])
    assert container()["resources"]["limits"]["memory"]
    assert pod["terminationGracePeriodSeconds"] > load_settings({}).graceful_timeout_s


def test_the_database_password_comes_from_a_secret_file():
    env = {e["name"]: e.get("value") for e in container()["env"]}
    assert (
        "@" in env["CDS_DATABASE_URL"]
        and ":" not in env["CDS_DATABASE_URL"].split("//")[1].split("@")[0]
    )
    mounted = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in BY_KIND["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    (name,) = [n for n, v in volumes.items() if "secret" in v]
    item = volumes[name]["secret"]["items"][0]
    assert env["CDS_DATABASE_PASSWORD_FILE"] == f"{mounted[name]}/{item['path']}"
    settings = {k: v for k, v in env.items() if k.startswith("CDS_")}
    for inside in ("CDS_DATABASE_PASSWORD_FILE", "CDS_TRUSTED_CLIENTS"):
        settings.pop(inside)
    load_settings(settings)  # every other setting is known and valid


def test_the_budget_the_autoscaler_and_the_service_aim_at_the_deployment():
    labels = BY_KIND["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert BY_KIND["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    budget = BY_KIND["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["maxUnavailable"] == 1
    target = BY_KIND["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (
        "Deployment",
        BY_KIND["Deployment"]["metadata"]["name"],
    )
    assert BY_KIND["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    service = BY_KIND["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"
