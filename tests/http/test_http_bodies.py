"""No request body or query string can make a 500: crafted JSON (huge integers, deep
nesting), non-JSON media types and absurd page parameters are each a JSON 4xx that
changes nothing, on every route that reads them."""

from __future__ import annotations

import contextlib
import json

import pytest
from http_support import ALICE, ROOT, build_app
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tokenplans import InvalidRequestError
from tokenplans_adapters.http.bodies import MAX_JSON_DEPTH, check_json_limits

#: Every token route that reads a JSON body, with a body it accepts.
JSON_ROUTES = [
    ("/api/tokens/consume", ALICE, {"amount": 5}),
    ("/api/tokens/set-plan", ALICE, {"plan": "basic"}),
    ("/api/admin/accounts/bob/consume", ROOT, {"amount": 5}),
    ("/api/admin/accounts/bob/set-plan", ROOT, {"plan": "premium"}),
    ("/api/admin/accounts/bob/grant", ROOT, {"amount": 5}),
]
ROUTE_IDS = [path.removeprefix("/api/") for path, _, _ in JSON_ROUTES]

#: Bodies Python's own parser cannot take (ValueError, RecursionError) or should not.
CRAFTED_BODIES = [
    pytest.param(b'{"amount": 1' + b"0" * 5000 + b"}", "more than 100 digits", id="5001 digits"),
    pytest.param(b'{"amount": -1' + b"0" * 5000 + b"}", "more than 100 digits", id="negative"),
    pytest.param(b'{"amount": 1.' + b"0" * 5000 + b"}", "more than 100 digits", id="fraction"),
    pytest.param(b"[" * 1000 + b"]" * 1000, "nests deeper than 32", id="1000 arrays in 2 KB"),
    pytest.param(b'{"a":' * 1000 + b"1" + b"}" * 1000, "nests deeper than 32", id="objects"),
    pytest.param(b"[" * 50_000, "nests deeper than 32", id="unterminated"),
    pytest.param(b'{"amount": 5, "x": ' + b"[" * 999 + b"]" * 999 + b"}", "32", id="in a field"),
    pytest.param(b'{"amount": 5, "x": "' + b'\\"' * 20_000, "not valid JSON", id="open string"),
    pytest.param(("[" * 1000).encode("utf-16"), "nests deeper than 32", id="utf-16"),
]


@pytest.fixture
def client() -> TestClient:
    return TestClient(build_app(), raise_server_exceptions=False)


def _untouched(client: TestClient) -> None:
    for headers, path in ((ALICE, "/api/tokens/usage"), (ROOT, "/api/admin/accounts/bob")):
        usage = client.get(path, headers=headers).json()
        assert (usage["plan"], usage["token_quota"], usage["token_used"]) == ("basic", 1000, 0)


@pytest.mark.parametrize(("path", "headers", "_accepted"), JSON_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(("body", "message"), CRAFTED_BODIES)
def test_a_crafted_body_is_a_422_on_every_json_route(
    client: TestClient,
    path: str,
    headers: dict[str, str],
    _accepted: object,
    body: bytes,
    message: str,
) -> None:
    response = client.post(
        path, content=body, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"
    assert message in response.json()["message"]
    _untouched(client)


def test_brackets_and_digits_inside_strings_do_not_count(client: TestClient) -> None:
    key = "[{" * 40 + "9" * 150 + '\\"' + "]" * 10

    response = client.post(
        "/api/tokens/consume",
        content='{"amount": 5, "idempotency_key": "%s"}' % key,  # noqa: UP031 - raw JSON
        headers={**ALICE, "Content-Type": "application/json"},
    )

    assert response.status_code == 200
    assert response.json()["idempotency_key"] == key.replace('\\"', '"')


def test_a_long_amount_within_the_digit_limit_reaches_the_service_rules(
    client: TestClient,
) -> None:
    body = b'{"amount": 1' + b"0" * 99 + b"}"

    response = client.post("/api/tokens/consume", content=body, headers=ALICE)

    assert response.status_code == 422
    assert response.json()["message"].startswith("amount must be between 1 and")
    _untouched(client)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)


@given(
    body=st.binary(max_size=200)
    | _JSON.map(lambda value: json.dumps(value).encode())
    | st.tuples(st.integers(1, 3000), st.sampled_from(["[", '{"a":', "["])).map(
        lambda spec: (spec[1] * spec[0]).encode()
    ),
    route=st.sampled_from(JSON_ROUTES),
)
def test_no_body_whatsoever_is_a_server_error(
    body: bytes, route: tuple[str, dict[str, str], object]
) -> None:
    path, headers, _ = route
    client = TestClient(build_app(), raise_server_exceptions=False)

    response = client.post(
        path, content=body, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status_code < 500
    assert isinstance(response.json(), dict)


def _reference_depth(text: str) -> int:
    """What the parser's recursion reaches, the slow obvious way: count brackets outside
    strings from the left, up to a string that never ends."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@given(st.text(alphabet='[]{}"\\1a,: ', max_size=300) | st.integers(0, 80).map(lambda n: "[" * n))
def test_the_depth_check_never_lets_through_what_nests_too_deep(text: str) -> None:
    try:
        check_json_limits(text)
    except InvalidRequestError:
        return
    assert _reference_depth(text) <= MAX_JSON_DEPTH
    with contextlib.suppress(json.JSONDecodeError):  # not JSON; never a RecursionError
        json.loads(text)


# -- query parameters ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/tokens/ledger", "/api/admin/accounts/bob/ledger"])
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cursor": "9" * 5000}, "cursor must be at most 64 characters"),
        ({"cursor": "1" + "0" * 40}, "invalid cursor"),
        ({"limit": "9" * 5000}, "limit must be a positive integer"),
        ({"limit": "٣"}, "limit must be a positive integer"),
        ({"limit": "1" + "0" * 18}, "limit must be between 1 and 200"),
    ],
)
def test_an_absurd_page_parameter_is_a_short_422(
    client: TestClient, path: str, params: dict[str, str], message: str
) -> None:
    response = client.get(path, params=params, headers=ALICE if "tokens" in path else ROOT)

    assert response.status_code == 422
    assert response.json()["message"].startswith(message)
    assert len(response.text) < 200


# -- media types --------------------------------------------------------------------


@pytest.mark.parametrize(("path", "headers", "body"), JSON_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"],
)
def test_a_body_declared_as_something_other_than_json_is_a_415(
    client: TestClient,
    path: str,
    headers: dict[str, str],
    body: dict[str, object],
    content_type: str,
) -> None:
    response = client.post(
        path, content=json.dumps(body), headers={**headers, "Content-Type": content_type}
    )

    assert response.status_code == 415
    assert response.json() == {
        "error": "unsupported media type",
        "message": f"request body must be JSON, not {content_type!r}",
    }
    _untouched(client)


@pytest.mark.parametrize(("path", "headers", "body"), JSON_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "content_type", [None, "", "application/json", "Application/JSON; charset=utf-8"]
)
def test_json_or_no_content_type_at_all_is_read_as_json(
    client: TestClient,
    path: str,
    headers: dict[str, str],
    body: dict[str, object],
    content_type: str | None,
) -> None:
    """``curl -d '{...}'`` without ``-H`` sends no Content-Type; it still works."""
    extra = {} if content_type is None else {"Content-Type": content_type}

    response = client.post(path, content=json.dumps(body).encode(), headers={**headers, **extra})

    assert response.status_code == 200, response.json()


# -- CORS preflights ----------------------------------------------------------------


def test_a_refused_cors_preflight_answers_json(client: TestClient) -> None:
    response = client.options(
        "/api/tokens/consume",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": "cors preflight refused",
        "message": "Disallowed CORS origin",
    }
