"""The page's templates and stylesheet, shipped inside the package (no CDN, no build
step). Loaded when this module is imported, so a wheel that lacks one fails at once."""

from __future__ import annotations

import hashlib
from importlib.resources import files

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

TEMPLATE_NAMES = ("account.html", "checkout.html", "message.html", "opening.html")

templates = Environment(
    loader=PackageLoader("tokenplans_adapters.portal", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
for _name in TEMPLATE_NAMES:
    templates.get_template(_name)

#: The stylesheet, and a version of it for its URL (so it can be cached for long).
STYLESHEET = files("tokenplans_adapters.portal").joinpath("static/portal.css").read_bytes()
STYLESHEET_VERSION = hashlib.sha256(STYLESHEET).hexdigest()[:12]
