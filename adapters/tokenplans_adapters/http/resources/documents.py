"""The API's description: ``GET /openapi.json`` and the Swagger UI at ``/docs``.

The UI comes from the files the ``swagger-ui-py`` distribution ships, with no CDN: the
page and its assets come from this process, so the docs work offline and behind strict
firewalls. Only the static files of that distribution are used (found without importing
it); its Jinja templates and framework handlers are not. All URLs in the page are
relative, so it works unchanged when the app is mounted under a prefix: from
``<prefix>/docs``, ``openapi.json`` is ``<prefix>/openapi.json``.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from tokenplans_adapters.http.errors import json_error
from tokenplans_adapters.http.openapi import JSON, errors
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.state import state_of

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


_ASSETS = swagger_ui_dir()


async def openapi(request: Request) -> JSONResponse:
    """The document, with ``servers`` pointing at wherever the app is mounted."""
    document = dict(state_of(request).openapi)
    document["servers"] = [{"url": request.scope.get("root_path", "") or "/"}]
    return JSONResponse(document)


async def docs(request: Request) -> Response:
    """The Swagger UI page; without the assets, ``/docs`` says how to get them."""
    if _ASSETS is None:
        return json_error(
            404, "not found", message="install swagger-ui-py (the http extra) for /docs"
        )
    return HTMLResponse(_PAGE.format(title=html.escape(state_of(request).title)))


def _assets() -> list[BaseRoute]:
    if _ASSETS is None:
        return []
    return [Mount(ASSETS_PATH, app=StaticFiles(directory=_ASSETS), name="docs-assets")]


RESOURCE = Resource(
    operations=[
        Operation(
            "GET",
            "/openapi.json",
            openapi,
            {
                "operationId": "getOpenapiDocument",
                "summary": "This document",
                "tags": ["meta"],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    },
                    **errors(),
                },
            },
        ),
        Operation(
            "GET",
            "/docs",
            docs,
            {
                "operationId": "getSwaggerUi",
                "summary": "Swagger UI for this document (served locally, no CDN)",
                "tags": ["meta"],
                "responses": {
                    "200": {
                        "description": "HTML.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    **errors(),
                },
            },
        ),
    ],
    routes=_assets(),
)
