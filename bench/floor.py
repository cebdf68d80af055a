"""The floor of the server benchmark: a bare Flask app that only parses the JSON body and
answers ``{"cards": []}``. Whatever the real service costs beyond this is ours.

    .venv/bin/python -m bench.floor --port 8090 [--workers N]

It is served by the very code that serves the service (``cds-service serve``, gunicorn with
the production worker class, threads, timeouts and worker count): only the WSGI app is swapped,
so the two differ in nothing but what the app does.
"""

from __future__ import annotations

import json
import sys

from flask import Flask, Response, request


def create_floor_app() -> Flask:
    app = Flask("floor")

    @app.post("/cds-services/<service_id>")
    def invoke(service_id: str) -> Response:
        json.loads(request.get_data())
        return Response(b'{"cards": []}', mimetype="application/json")

    @app.get("/cds-services")
    def discovery() -> Response:
        return Response(b'{"services": []}', mimetype="application/json")

    return app


def main(argv: list[str] | None = None) -> int:
    from cds_service import bootstrap, cli

    floor = create_floor_app()
    # `cds-service serve` builds its app through bootstrap.build_app: swap only that.
    bootstrap.build_app = lambda settings=None, environ=None: floor
    return cli.main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
