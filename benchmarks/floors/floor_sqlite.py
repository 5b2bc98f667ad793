"""The same-work floor on SQLite (stdlib ``sqlite3``): ``python floor_sqlite.py PORT FILE``.

Configured as tokenplans configures SQLite: WAL, ``synchronous=FULL``, a 30 s busy
timeout, ``BEGIN IMMEDIATE`` for the write, writers queued on a lock in the process; one
connection per storage thread.
"""

from __future__ import annotations

import sqlite3
import sys

from common import Floor, serve


def connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    return connection


if __name__ == "__main__":
    port, path = int(sys.argv[1]), sys.argv[2]
    floor = Floor(
        lambda: connect(path), returning=True, marker="?", begin="BEGIN IMMEDIATE", one_writer=True
    )
    serve(floor, port)
