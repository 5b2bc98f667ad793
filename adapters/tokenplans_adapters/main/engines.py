"""The database engine a command opens, with one line saying what to do when the URL or
its driver is wrong, and URLs shown with their password masked."""

from __future__ import annotations

import importlib

import attrs
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from .app import build_engine
from .config import ConfigError, Settings


def open_engine(settings: Settings, *, migrating: bool = False) -> Engine:
    url = settings.database_url
    try:
        return build_engine(settings, migrating=migrating)
    except ConfigError:
        raise
    except ModuleNotFoundError as error:
        raise ConfigError(f"database URL {masked(url)}: {_missing_driver(url, error)}") from None
    except sa_exc.NoSuchModuleError:
        scheme = url.partition(":")[0]
        raise ConfigError(
            f"database URL {masked(url)}: unknown scheme {scheme!r}; the URL forms are {_URL_FORMS}"
        ) from None
    except Exception as error:  # a malformed URL, an unknown scheme...
        raise ConfigError(
            f"database URL {masked(url)}: {error}; the URL forms are {_URL_FORMS}"
        ) from None


_URL_FORMS = (
    "sqlite:///path/to/file.sqlite3, postgresql+psycopg://user:pw@host/db and "
    "mysql+pymysql://user:pw@host/db"
)


@attrs.frozen
class _Driver:
    """The driver tokenplans supports for a database."""

    module: str  # what it imports as
    requirement: str  # what installs it from the package index (as tokenplans' extra has it)
    extra: str  # tokenplans' extra that installs it
    drivername: str  # the URL scheme that uses it


_PSYCOPG = _Driver("psycopg", "psycopg[binary]", "postgres", "postgresql+psycopg")


_PYMYSQL = _Driver("pymysql", "pymysql", "mysql", "mysql+pymysql")

#: The driver module a URL's scheme loads -> ours for that database.
DRIVERS = {"psycopg": _PSYCOPG, "psycopg2": _PSYCOPG, "pymysql": _PYMYSQL, "MySQLdb": _PYMYSQL}


def _missing_driver(url: str, error: ModuleNotFoundError) -> str:
    """What to do about ``url``'s driver not being installed: install ours (named as the
    package index knows it: tokenplans itself is not there), or, when ours is installed
    and the URL asks for another (``mysql://`` means MySQLdb), use our scheme."""
    driver = DRIVERS.get(error.name or "")
    if driver is None:
        return f"its driver is not installed ({error})"
    if error.name != driver.module and _installed(driver.module):
        ours = make_url(url).set(drivername=driver.drivername)
        return (
            f"its driver {error.name!r} is not installed, but {driver.module!r} is installed: "
            f"use a {driver.drivername}:// URL, i.e. {ours.render_as_string(hide_password=True)}"
        )
    return (
        f"its driver {error.name!r} is not installed: pip install '{driver.requirement}' "
        f"(tokenplans' {driver.extra} extra has it) and use a {driver.drivername}:// URL"
    )


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"
