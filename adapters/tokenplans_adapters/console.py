"""The ``tokenplans`` console script: the command, or one line saying what it needs.

The command imports SQLAlchemy, Starlette, PyJWT and python-dotenv, which the ``server``
extra installs (with uvicorn, which ``serve`` needs); a bare install of tokenplans (the
library) has none of them, and its command would end in a traceback without this module.
"""

from __future__ import annotations

import sys

EXIT_CONFIG = 2
#: The top-level modules the command needs, all installed by the ``server`` extra.
SERVER_EXTRA_MODULES = frozenset(
    {
        "sqlalchemy",
        "alembic",
        "starlette",
        "anyio",
        "swagger_ui",
        "jwt",
        "cryptography",
        "dotenv",
        "uvicorn",
    }
)


def main() -> int:
    """Run the ``tokenplans`` command; exit code 2 and one line when its extra is missing."""
    try:
        from tokenplans_adapters.main.cli import main as run  # noqa: PLC0415
    except ModuleNotFoundError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in SERVER_EXTRA_MODULES:
            raise
        print(
            f"tokenplans: error: the tokenplans command needs the server extra ({missing!r} "
            "is not installed): install tokenplans with it, e.g. pip install "
            "'PATH[server]' where PATH is a tokenplans wheel or checkout",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return run()


if __name__ == "__main__":
    sys.exit(main())
