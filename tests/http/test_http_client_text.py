"""Whatever text a client sends, it comes back (in an error body) and goes out (in a log
line) escaped: a lone surrogate is a 422, never a 500, and a newline in a path cannot
forge a log line.

A lone surrogate (JSON's ``"\\ud800"``) decodes to a Python string that UTF-8 cannot
encode: echoed in an error body it made the answer itself fail (a 500 and a screen of
ERROR lines). A ``%0A`` in a path is decoded to a newline before routing: written into
a log line, it let a client append a line of its choosing.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable, Iterator

import pytest
from http_support import ALICE, ROOT, build_app
from starlette.testclient import TestClient

from tokenplans import Account, StorageUnavailableError
from tokenplans.testing import InMemoryStore
from tokenplans_adapters.http.refusals import escaped
from tokenplans_adapters.main.logs import EscapingFormatter, uvicorn_log_config

JSON = {"Content-Type": "application/json"}
FORGED = "POST /api/admin/accounts/victim/grant 200"


class _Records:
    """The records captured so far (pytest's list is a new one in each test phase)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def __iter__(self) -> Iterator[logging.LogRecord]:
        return iter(self.caplog.records)


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Iterator[_Records]:
    """Every record the adapters log while the test runs, at any level."""
    with caplog.at_level(logging.DEBUG, logger="tokenplans_adapters"):
        yield _Records(caplog)


def _adapter_lines(records: Iterable[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.name.startswith("tokenplans_adapters")]


def _assert_one_line_each(records: Iterable[logging.LogRecord]) -> None:
    for line in _adapter_lines(records):
        assert "\n" not in line
        assert "\r" not in line
        assert line.isprintable(), line


# -- lone surrogates in bodies: 422 ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "who"),
    [
        ("/api/tokens/consume", '{"amount": 5, "\\ud800": 1}', ALICE),  # a field name
        ("/api/tokens/consume", '{"amount": 5, "idempotency_key": "k\\udfff"}', ALICE),
        ("/api/tokens/set-plan", '{"plan": "\\ud800"}', ALICE),  # a plan id
        ("/api/tokens/set-plan", '{"plan": "basic", "x\\udc80y": true}', ALICE),
        ("/api/tokens/holds", '{"amount": 5, "hold_id": "h-\\ud800"}', ALICE),  # a hold id
        (
            "/api/tokens/consume",
            '{"usage": {"model": "gpt-4o\\ud800", "input_tokens": 1, "output_tokens": 1}}',
            ALICE,
        ),
        ("/api/tokens/consume", '{"usage": {"\\uDBFF": 1}}', ALICE),  # nested key, upper case
        ("/api/admin/accounts/bob/grant", '{"amount": 5, "\\ud800": 1}', ROOT),
    ],
)
def test_a_lone_surrogate_anywhere_in_a_body_is_a_422(
    path: str, body: str, who: dict[str, str], records: _Records
) -> None:
    client = TestClient(build_app(), raise_server_exceptions=False)

    response = client.post(path, content=body, headers={**who, **JSON})

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid request"
    assert "lone surrogate" in response.json()["message"]
    assert not [r for r in records if r.levelno >= logging.ERROR]
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 0


def test_a_surrogate_sent_as_utf8_bytes_is_a_422_too() -> None:
    # The bytes ED A0 80 encode U+D800 the way UTF-8 would if it allowed it.
    client = TestClient(build_app(), raise_server_exceptions=False)
    body = b'{"plan": "\xed\xa0\x80"}'

    response = client.post("/api/tokens/set-plan", content=body, headers={**ALICE, **JSON})

    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"


def test_a_pair_of_surrogates_is_one_character_and_is_accepted_as_text() -> None:
    client = TestClient(build_app(), raise_server_exceptions=False)
    body = '{"plan": "emoji-\\ud83d\\ude00"}'  # U+1F600, written as its JSON pair

    response = client.post("/api/tokens/set-plan", content=body, headers={**ALICE, **JSON})

    assert (response.status_code, response.json()) == (
        400,
        {"error": "invalid plan", "plan": "emoji-\U0001f600"},  # echoed as it was meant
    )


def test_an_escaped_backslash_before_u_d800_is_not_a_surrogate() -> None:
    client = TestClient(build_app(), raise_server_exceptions=False)
    body = '{"plan": "\\\\ud800"}'  # the six characters \ud800, not a surrogate

    response = client.post("/api/tokens/set-plan", content=body, headers={**ALICE, **JSON})

    assert (response.status_code, response.json()) == (
        400,
        {"error": "invalid plan", "plan": "\\ud800"},
    )


# -- control characters: echoed escaped ---------------------------------------------------


def test_control_characters_in_a_plan_id_are_echoed_escaped() -> None:
    client = TestClient(build_app(), raise_server_exceptions=False)

    response = client.post(
        "/api/tokens/set-plan", json={"plan": "basic\nPOST /x 200\r\x1b[31m\u2028"}, headers=ALICE
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid plan",
        "plan": "basic\\nPOST /x 200\\r\\x1b[31m\\u2028",
    }


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/api/tokens/holds/a%0Ab", (404, "hold not found")),
        ("POST", "/api/tokens/holds/a%0D%0Ab/release", (404, "hold not found")),
        ("POST", "/api/tokens/holds/%1B%5B2J/settle", (404, "hold not found")),
        ("GET", "/api/nothing%0A" + FORGED.replace(" ", "%20"), (404, "not found")),
        ("GET", "/api/tokens/holds/%ED%A0%80", (422, "invalid request")),  # not UTF-8
    ],
)
def test_control_characters_in_a_path_are_a_json_answer_without_raw_newlines(
    method: str, path: str, expected: tuple[int, str], records: _Records
) -> None:
    client = TestClient(build_app(), raise_server_exceptions=False)
    body = {"amount": 1} if path.endswith("/settle") else None

    response = client.request(method, path, headers=ALICE, json=body)

    assert (response.status_code, response.json()["error"]) == expected
    assert "\n" not in response.json().get("hold_id", "")
    _assert_one_line_each(records)


def test_a_hold_id_with_a_newline_is_echoed_escaped() -> None:
    client = TestClient(build_app(), raise_server_exceptions=False)

    response = client.get("/api/tokens/holds/a%0Ab", headers=ALICE)

    assert response.json() == {"error": "hold not found", "hold_id": "a\\nb"}


# -- log lines ----------------------------------------------------------------------------


class DownStore(InMemoryStore):
    def load(self, subject: str) -> Account | None:
        raise StorageUnavailableError("database unavailable: connection refused")


class BrokenStore(InMemoryStore):
    def load(self, subject: str) -> Account | None:
        raise RuntimeError("a bug")


@pytest.mark.parametrize(
    ("store", "status"), [(DownStore(), 503), (BrokenStore(), 500)], ids=["503", "500"]
)
def test_a_newline_in_the_path_cannot_forge_a_log_line(
    store: InMemoryStore, status: int, records: _Records
) -> None:
    client = TestClient(build_app(store), raise_server_exceptions=False)
    path = "/api/admin/accounts/x%0A" + FORGED.replace(" ", "%20").replace("/", "%2F")

    response = client.get(path, headers=ROOT)

    assert response.status_code == status
    (line,) = _adapter_lines(records)
    _assert_one_line_each(records)
    assert "x\\nPOST /api/admin/accounts/victim/grant 200" in line


def test_the_servers_log_formatter_escapes_every_message() -> None:
    formatter = EscapingFormatter("%(name)s: %(message)s")
    record = logging.LogRecord(
        "tokenplans_adapters.x", logging.INFO, "f", 1, "a %s", ("b\nc",), None
    )
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord(
            "tokenplans_adapters.x", logging.ERROR, "f", 1, "x\r%s", ("\ud800",), sys.exc_info()
        )

    assert formatter.format(record) == "tokenplans_adapters.x: a b\\nc"
    first, *traceback = formatter.format(failed).splitlines()
    assert first == "tokenplans_adapters.x: x\\r\\ud800"
    assert traceback[0] == "Traceback (most recent call last):"  # the traceback stays readable


# -- the helper ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain-id_1.2", "plain-id_1.2"),
        ("naïve 東京 \U0001f600", "naïve 東京 \U0001f600"),  # printable text is left alone
        ("a\nb\rc\td\x00e\x7f", "a\\nb\\rc\\td\\x00e\\x7f"),
        ("\x85\u2028\u2029\u200b", "\\x85\\u2028\\u2029\\u200b"),
        ("\ud800\udfff", "\\ud800\\udfff"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_escaped_leaves_one_printable_encodable_line(text: str, expected: str) -> None:
    result = escaped(text)

    assert result == expected
    assert result.isprintable()
    result.encode("utf-8")  # never raises


def test_the_server_formats_the_adapters_lines_with_the_escaping_formatter() -> None:
    config = uvicorn_log_config()

    factory = config["formatters"]["tokenplans"]["()"]
    module, _, name = factory.rpartition(".")

    assert getattr(importlib.import_module(module), name) is EscapingFormatter
