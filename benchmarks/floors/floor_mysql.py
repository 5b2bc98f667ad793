"""The same-work floor on MariaDB/MySQL (``pymysql``, in threads):
``python floor_mysql.py PORT URL`` (a ``mysql+pymysql://user:pw@host:port/db`` URL).

MariaDB has no ``UPDATE ... RETURNING``: the consume reads the row it just updated
(inside the transaction, so it is its own write). ``READ COMMITTED``, as tokenplans uses.
"""

from __future__ import annotations

import sys
from urllib.parse import unquote, urlsplit

import pymysql
from common import Floor, serve


def connect(url: str) -> pymysql.Connection:
    parts = urlsplit(url)
    connection = pymysql.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
        user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
        database=parts.path.lstrip("/"), charset="utf8mb4", autocommit=True,
    )  # fmt: skip
    connection.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return connection


if __name__ == "__main__":
    port, url = int(sys.argv[1]), sys.argv[2]
    serve(Floor(lambda: connect(url), returning=False), port)
