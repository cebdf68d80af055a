"""``cds-service``: serve, evaluate a request offline, list the rules, report feedback, audit a
population export, write a synthetic population."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cds_service.cdshooks.errors import CdsError, operation_outcome
from cds_service.config import ConfigError, Settings, load_settings, unusable_database


def _parse_now(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"--now: {text!r} is not an ISO date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.serving import serve

    return serve(settings, args.host, args.port or settings.port, args.workers)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.bootstrap import load_registry
    from cds_service.cdshooks.application import CdsApplication

    try:
        body = json.loads(Path(args.request).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"cannot read {args.request}: {exc.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(
            f"{args.request} is not valid JSON at line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}",
            file=sys.stderr,
        )
        return 2
    except UnicodeDecodeError:
        print(f"{args.request} is not UTF-8 text", file=sys.stderr)
        return 2
    if not isinstance(body, dict):
        print(
            f"{args.request}: not a CDS Hooks request (expected a JSON object with hook, "
            f"hookInstance and context, found a JSON {type(body).__name__})",
            file=sys.stderr,
        )
        return 2
    registry = load_registry()
    valid = ", ".join(s.id for s in registry)
    if args.service and args.service not in registry:
        print(f"--service: unknown service {args.service!r}; valid ids: {valid}", file=sys.stderr)
        return 2
    service_id = args.service or _service_for(registry, body)
    if service_id is None:
        print(
            f"--service is required: no service answers the hook {body.get('hook')!r}; "
            f"valid ids: {valid}",
            file=sys.stderr,
        )
        return 2
    core = CdsApplication(registry=registry, store=None, policy=settings.policy)
    try:
        response = core.invoke(service_id, body, now=_parse_now(args.now))
    except CdsError as error:
        print(json.dumps(operation_outcome(error), indent=2))
        return 1
    print(json.dumps(response, indent=2, ensure_ascii=False))
    return 0


def _service_for(registry, body: Any) -> str | None:
    hook = body.get("hook") if isinstance(body, dict) else None
    return next((s.id for s in registry if s.hook.value == hook), None)


def cmd_feedback_report(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.storage import StorageError, open_store

    try:
        reports = open_store(settings.database_url).feedback_report()
    except StorageError as exc:  # the storage layer's reason is without the password
        print(unusable_database(settings.database_url, str(exc)), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
        return 0
    print(
        f"{'rule':32} {'shown':>6} {'silent':>6} {'accepted':>8} {'overridden':>10} "
        f"{'shown/1000':>10} {'silent/1000':>11}  override reasons"
    )
    for r in reports:
        reasons = "; ".join(
            f"{k} ({v})" for k, v in sorted(r.override_reasons.items(), key=lambda i: -i[1])
        )
        print(
            f"{r.rule_id:32} {r.issued:>6} {r.silent:>6} {r.accepted:>8} {r.overridden:>10} "
            f"{_per_1000(r.shown_per_1000):>10} {_per_1000(r.silent_per_1000):>11}  {reasons}"
        )
    if not reports:
        print("(no cards issued and no feedback yet)")
    else:
        invocations = max(r.invocations for r in reports)
        print(f"\nper 1000: per 1,000 invocations of the services ({invocations} counted)")
    return 0


def _per_1000(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.domain.catalogue import catalogue

    if args.format == "markdown":
        from cds_service.domain.catalogue import markdown

        sys.stdout.write(markdown(settings.policy))
        return 0
    entries = catalogue(settings.policy)
    if args.json or args.format == "json":
        print(json.dumps(entries, indent=2, ensure_ascii=False))
        return 0
    for entry in entries:
        print(f"{entry['id']}  {entry['title']}")
        print(f"    mode: {entry['mode']}")
        print(f"    indicator: {', '.join(entry['indicators'])}")
        for source in entry["sources"]:
            print(f"    source: {source['label']} <{source['url']}>")
        for key, value in entry["settings"].items():
            print(f"    {key} = {value}")
        print()
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("b12-cds-service")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.audit.report import write_outputs
    from cds_service.audit.run import AuditOptions, run_audit

    as_of = _parse_now(args.as_of) or datetime.now(timezone.utc)
    options = AuditOptions(
        inputs=args.inputs,
        as_of=as_of,
        policy=settings.policy,
        workers=args.workers,
        scheduler=args.scheduler,
        workdir=args.work_dir,
        partitions=args.partitions,
        strict_fhir=settings.fhir_strict,
        worklist=args.worklist_patient_ids,
        progress=sys.stderr,
    )
    try:
        result = run_audit(options)
    except (OSError, RuntimeError) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    paths = write_outputs(result, settings.policy, Path(args.out))
    tally = result.tally
    print(
        f"{tally.population} patients as of {as_of.date().isoformat()}; "
        f"invocations: {dict(sorted(tally.invocations.items()))}; "
        f"{result.seconds:.1f} s ({result.patients_per_s:.0f} patients/s, "
        f"{result.workers} workers, {result.backend})"
    )
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if args.worklist_patient_ids:
        print(f"worklist (patient ids): {args.worklist_patient_ids}")
    return 0


def cmd_synth(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.audit.synth import write_population

    as_of = _parse_now(args.as_of) or datetime.now(timezone.utc)
    counts = write_population(
        Path(args.out), args.patients, seed=args.seed, as_of=as_of, gzip_files=args.gzip
    )
    print(", ".join(f"{kind}: {n}" for kind, n in counts.items()) + f" -> {args.out}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `cds-service evaluate ... | head`: the reader left; say nothing more. Python would
        # print a traceback while flushing stdout at exit, so point stdout at /dev/null.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service under gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: CDS_PORT or 8080")
    serve.add_argument(
        "--workers", type=int, default=None, help="default: CDS_WORKERS or the CPU count"
    )
    evaluate = sub.add_parser("evaluate", help="print the response to a request file, offline")
    evaluate.add_argument(
        "request", help="a CDS Hooks request JSON file (e.g. fixtures/scenarios/*/request.json)"
    )
    evaluate.add_argument("--service", help="service id (default: the one for the request's hook)")
    evaluate.add_argument("--now", help="evaluation time, ISO 8601 (default: now)")
    report = sub.add_parser("feedback-report", help="accepted / overridden counts per rule")
    report.add_argument("--json", action="store_true")
    rules = sub.add_parser("rules", help="the knowledge base with thresholds in effect")
    rules.add_argument("--json", action="store_true", help="the same as --format json")
    rules.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="markdown: the rule table of docs/rulebook.md",
    )
    audit = sub.add_parser(
        "audit", help="alert burden over a Bulk Data NDJSON export (counts only)"
    )
    audit.add_argument("inputs", nargs="+", help="NDJSON files or directories (.ndjson[.gz])")
    audit.add_argument("--out", required=True, help="directory for audit.csv/.json/.svg")
    audit.add_argument("--as-of", help="evaluation date, ISO 8601 (default: now)")
    audit.add_argument(
        "--workers", type=_positive, default=None, help="local processes (default: every core)"
    )
    audit.add_argument(
        "--scheduler", help="tcp://host:port of a Dask scheduler: run the tasks there"
    )
    audit.add_argument(
        "--work-dir",
        help="partition files (default: a temporary directory, removed); with --scheduler, "
        "a directory every worker sees at the same path",
    )
    audit.add_argument("--partitions", type=_positive, help="default: from the input size")
    audit.add_argument(
        "--worklist-patient-ids",
        metavar="CSV",
        help="ALSO write the patient ids per rule to this CSV (patient data: a worklist)",
    )
    synth = sub.add_parser("synth", help="write a seeded synthetic population as NDJSON")
    synth.add_argument("--patients", type=_positive, required=True)
    synth.add_argument("--out", required=True)
    synth.add_argument("--seed", type=int, default=16)
    synth.add_argument("--as-of", help="the population's 'today', ISO 8601 (default: now)")
    synth.add_argument("--gzip", action="store_true", help="write .ndjson.gz files")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    commands = {
        "serve": cmd_serve,
        "evaluate": cmd_evaluate,
        "feedback-report": cmd_feedback_report,
        "rules": cmd_rules,
        "audit": cmd_audit,
        "synth": cmd_synth,
    }
    try:
        return commands[args.command](args, settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
