"""Swagger UI at ``/docs``, from the files the ``swagger-ui-py`` distribution ships.

No CDN: the page and its assets come from this process, so the docs work offline and
behind strict firewalls. Only the static files of that distribution are used (found
without importing it); its Jinja templates and framework handlers are not.
All URLs in the page are relative, so it works unchanged when the app is mounted under
a prefix: from ``<prefix>/docs``, ``openapi.json`` is ``<prefix>/openapi.json``.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .errors import json_error

ASSETS_PATH = "/docs/assets"

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - API docs</title>
  <link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true,
      validatorUrl: null  // no badge fetched from the public validator: fully offline
    }});
  </script>
</body>
</html>
"""


def swagger_ui_dir() -> Path | None:
    """Where the installed Swagger UI files are, or ``None`` if the package is missing."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def docs_routes(title: str) -> list[BaseRoute]:
    """``GET /docs`` and its assets; without the assets, ``/docs`` says how to get them."""
    assets = swagger_ui_dir()
    page = _PAGE.format(title=html.escape(title))

    async def docs(_request: Request) -> Response:
        if assets is None:
            return json_error(
                404, "not found", message="install swagger-ui-py (the http extra) for /docs"
            )
        return HTMLResponse(page)

    routes: list[BaseRoute] = [Route("/docs", docs, methods=["GET"], name="docs")]
    if assets is not None:
        routes.append(Mount(ASSETS_PATH, app=StaticFiles(directory=assets), name="docs-assets"))
    return routes
