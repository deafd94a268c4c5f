"""Static checks of deploy/: dashboards and alert rules reference only exported metrics; manifests are coherent."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deployfiles import (
    DASHBOARDS,
    DEPLOY,
    KAMWATCH_SUBCOMMANDS,
    PROMETHEUS_DIR,
    REPO,
    dashboard_expressions,
    exported_kinds,
    exported_metric,
    load_dashboard,
    load_rules,
    metric_identifiers,
    panels,
    rule_expressions,
)

K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
KUSTOMIZATION = DEPLOY / "k8s/kustomization.yaml"
COMPOSE = DEPLOY / "compose.yaml"


@pytest.fixture(scope="module")
def kinds() -> dict[str, str]:
    return exported_kinds()


def provisioned_datasource_uids() -> set[str]:
    document = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    return {source["uid"] for source in document["datasources"]}


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def referenced(expressions: list[str]) -> set[str]:
    return {identifier for expr in expressions for identifier in metric_identifiers(expr)}


# --- dashboards ------------------------------------------------------------------------------------------


def test_both_dashboards_exist() -> None:
    assert {path.stem for path in DASHBOARDS} == {"operations", "portfolio"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_is_valid_grafana_json(path: Path) -> None:
    board = load_dashboard(path)
    datasource_uids = provisioned_datasource_uids()

    assert board["uid"]
    assert board["title"]
    assert isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(board):
        assert panel["type"] in {"row", "timeseries", "stat"}, panel["title"]
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in datasource_uids, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in datasource_uids, panel["title"]
            assert target["expr"].strip(), panel["title"]
            assert metric_identifiers(target["expr"]) or "up{" in target["expr"], panel["title"]


def test_dashboard_uids_are_unique() -> None:
    uids = [load_dashboard(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_references_only_exported_metrics(path: Path, kinds: dict[str, str]) -> None:
    identifiers = referenced(dashboard_expressions(path))

    assert identifiers
    assert {name for name in identifiers if exported_metric(name, kinds) is None} == set()


def test_dashboards_cover_what_operations_watch(kinds: dict[str, str]) -> None:
    def covered(path: Path) -> set[str]:
        return {exported_metric(name, kinds) or name for name in referenced(dashboard_expressions(path))}

    operations = covered(DEPLOY / "grafana/dashboards/operations.json")
    portfolio = covered(DEPLOY / "grafana/dashboards/portfolio.json")

    assert {
        "kamwatch_events_total",
        "kamwatch_consumer_lag",
        "kamwatch_event_freshness_seconds",
        "kamwatch_dead_letters_total",
        "kamwatch_outbox_pending",
        "kamwatch_outbox_oldest_pending_age_seconds",
        "kamwatch_http_request_seconds",
        "kamwatch_db_pool_connections",
    } <= operations
    assert {"kamwatch_accounts", "kamwatch_arr_at_risk", "kamwatch_alerts_opened_total"} <= portfolio


def test_money_panels_never_add_two_currencies() -> None:
    # kamwatch_arr_at_risk is labelled by currency: every aggregation over it keeps `currency` apart.
    money = [
        expr
        for path in DASHBOARDS
        for expr in dashboard_expressions(path) + rule_expressions()
        if "kamwatch_arr_at_risk" in expr
    ]
    aggregations = [
        clause for expr in money for clause in re.findall(r"\b(?:sum|max|min|avg)\s*(?:by\s*\(([^)]*)\))?\s*\(", expr)
    ]

    assert money
    assert all("currency" in clause for clause in aggregations), money


def test_identifier_resolution() -> None:
    kinds = {"kamwatch_events_total": "counter", "kamwatch_rescore_seconds": "histogram", "kamwatch_accounts": "gauge"}

    assert exported_metric("kamwatch_events_total", kinds) == "kamwatch_events_total"
    assert exported_metric("kamwatch_events_created", kinds) == "kamwatch_events_total"
    assert exported_metric("kamwatch_rescore_seconds_bucket", kinds) == "kamwatch_rescore_seconds"
    assert exported_metric("kamwatch_accounts_bucket", kinds) is None  # a gauge has no buckets
    assert exported_metric("kamwatch_event_total", kinds) is None
    assert metric_identifiers('sum(kamwatch_events_total{channel="kamwatch.usage", x="kamwatch_fake"})') == {
        "kamwatch_events_total"
    }


# --- Prometheus rules and config --------------------------------------------------------------------------


def test_rules_reference_only_exported_metrics(kinds: dict[str, str]) -> None:
    identifiers = referenced(rule_expressions())

    assert identifiers
    assert {name for name in identifiers if exported_metric(name, kinds) is None} == set()


def test_rules_cover_the_operational_risks() -> None:
    rules = load_rules()

    assert {rule["alert"] for rule in rules} >= {
        "KamwatchConsumerLagGrowing",
        "KamwatchDeadLetters",
        "KamwatchOutboxStuck",
        "KamwatchNoEventsReceived",
        "KamwatchSweepOverdue",
        "KamwatchApiErrorRate",
    }
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_prometheus_scrapes_the_ports_compose_configures() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    ports = {job["job_name"]: sd["port"] for job in config["scrape_configs"] for sd in job.get("dns_sd_configs", [])}

    assert config["rule_files"] == ["rules.yml"]
    assert ports == {"kamwatch-api": 8000, "kamwatch-worker": 9108, "kamwatch-alerter": 9109}
    assert services["worker"]["environment"]["KAMWATCH_METRICS_PORT"] == "9108"
    assert services["alerter"]["environment"]["KAMWATCH_METRICS_PORT"] == "9109"
    assert services["api"]["environment"]["KAMWATCH_API_PORT"] == "8000"


# --- compose ------------------------------------------------------------------------------------------------


def test_compose_runs_each_kamwatch_subcommand() -> None:
    (document,) = yaml_documents(COMPOSE)
    services = document["services"]
    kamwatch = {name: service for name, service in services.items() if service["image"].startswith("kamwatch:")}

    assert {service["command"][0] for service in kamwatch.values()} == KAMWATCH_SUBCOMMANDS
    assert {"kafka", "postgres", "prometheus", "grafana"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["api"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    for name, service in kamwatch.items():
        environment = service["environment"]
        assert environment["KAMWATCH_DATABASE_URL"].startswith("postgresql://"), name
        assert environment["KAMWATCH_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert all(key.startswith(("KAMWATCH_", "PROMETHEUS_")) for key in environment), name


def test_compose_dependencies_wait_for_health() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]

    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
            if condition["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{dependency} is not a one-shot"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "alerter", "api"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_mounts_existing_files() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]

    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


# --- Kubernetes ---------------------------------------------------------------------------------------------


def k8s_objects() -> list[dict[str, Any]]:
    return [document for path in K8S if path != KUSTOMIZATION for document in yaml_documents(path)]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def test_k8s_manifests_parse_and_run_kamwatch_subcommands() -> None:
    objects = k8s_objects()
    kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    subcommands = set()
    for obj in objects:
        if obj["kind"] in {"Deployment", "Job"}:
            for container in pod_spec(obj)["containers"]:
                assert "kamwatch" in container["image"]
                subcommands.add(container["args"][0])

    assert subcommands == KAMWATCH_SUBCOMMANDS
    assert {
        ("Namespace", "kamwatch"),
        ("ConfigMap", "kamwatch-config"),
        ("Secret", "kamwatch-secrets"),
        ("Secret", "kamwatch-alerter-secrets"),
        ("Secret", "kamwatch-api-secrets"),
        ("Job", "kamwatch-migrate"),
        ("Deployment", "kamwatch-api"),
        ("Service", "kamwatch-api"),
        ("Deployment", "kamwatch-worker"),
        ("HorizontalPodAutoscaler", "kamwatch-worker"),
        ("Deployment", "kamwatch-alerter"),
    } <= kinds


def test_k8s_deployments_have_probes_resources_and_scrape_annotations() -> None:
    deployments = [obj for obj in k8s_objects() if obj["kind"] == "Deployment"]

    assert len(deployments) == 3
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        (container,) = pod_spec(deployment)["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert int(annotations["prometheus.io/port"]) in ports.values(), name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in ports, name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        assert deployment["metadata"]["namespace"] == "kamwatch", name


def test_k8s_worker_autoscaler_targets_the_worker() -> None:
    (autoscaler,) = [obj for obj in k8s_objects() if obj["kind"] == "HorizontalPodAutoscaler"]

    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "kamwatch-worker",
    }
    assert 1 <= autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]


def test_k8s_wires_slack_smtp_and_the_signing_secret_where_they_are_needed() -> None:
    objects = k8s_objects()
    secrets = {obj["metadata"]["name"]: set(obj["stringData"]) for obj in objects if obj["kind"] == "Secret"}
    config = next(obj["data"] for obj in objects if obj["kind"] == "ConfigMap")

    def environment(deployment: str) -> set[str]:
        (container,) = pod_spec(next(o for o in objects if o["metadata"]["name"] == deployment))["containers"]
        names = {item["name"] for item in container.get("env", [])}
        for source in container["envFrom"]:
            names |= secrets[source["secretRef"]["name"]] if "secretRef" in source else set(config)
        return names

    alerter, api, worker = (environment(f"kamwatch-{name}") for name in ("alerter", "api", "worker"))
    assert {"KAMWATCH_SLACK_BOT_TOKEN", "KAMWATCH_SMTP_HOST", "KAMWATCH_SMTP_PASSWORD"} <= alerter
    assert "KAMWATCH_SLACK_SIGNING_SECRET" in api
    for name in ("KAMWATCH_SLACK_BOT_TOKEN", "KAMWATCH_SMTP_PASSWORD", "KAMWATCH_SLACK_SIGNING_SECRET"):
        assert name not in worker
    assert "KAMWATCH_SLACK_SIGNING_SECRET" not in alerter
    assert "KAMWATCH_SLACK_BOT_TOKEN" not in api
    assert {"KAMWATCH_DATABASE_URL", "KAMWATCH_SLACK_TEAM_CHANNEL"} <= worker & api & alerter


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    manifests = {path.name for path in K8S} - {KUSTOMIZATION.name, "secret.example.yaml"}

    assert set(kustomization["resources"]) == manifests


# --- Dockerfile ---------------------------------------------------------------------------------------------


def test_dockerfile_installs_from_the_lock_and_copies_every_package() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]

    assert re.search(r"^FROM python:3\.12-slim\b", dockerfile, re.MULTILINE)
    assert "uv sync --frozen" in dockerfile
    assert 'ENTRYPOINT ["kamwatch"]' in dockerfile
    for package in packages:
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, re.MULTILINE), package
