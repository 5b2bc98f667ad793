"""The same-work floor on PostgreSQL (``psycopg`` 3, in threads):
``python floor_postgres.py PORT URL`` (a ``postgresql://`` or ``postgresql+psycopg://`` URL).

One connection per storage thread, kept open; autocommit for the read (one round trip),
``BEGIN`` ... ``COMMIT`` around the consume's ``UPDATE ... RETURNING`` and ``INSERT``.
"""

from __future__ import annotations

import sys

import psycopg
from common import Floor, serve

if __name__ == "__main__":
    port, url = int(sys.argv[1]), sys.argv[2].replace("postgresql+psycopg://", "postgresql://")
    serve(Floor(lambda: psycopg.connect(url, autocommit=True), returning=True), port)
