"""The only Flask code: the app factory, routes, error handlers and CORS."""

from .app import create_app

__all__ = ["create_app"]
