"""Where a webhook may go: http(s) only, no credentials, public addresses unless private
targets are allowed (docs/events.md)."""

from __future__ import annotations

import pytest

from tokenplans_adapters.webhooks import TargetRefused, check_target


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
    ],
)
def test_private_loopback_and_link_local_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused, match="private or reserved"):
        check_target(url)
    check_target(url, allow_private=True)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://93.184.216.34/hook", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://user:pw@93.184.216.34/hook", "credentials"),
        ("https:///hook", "host"),
        ("", "characters"),
        ("https://93.184.216.34/" + "a" * 3000, "characters"),
        ("http://[::1/hook", "malformed"),
    ],
)
def test_malformed_targets_are_refused_even_when_private_ones_are_allowed(
    url: str, why: str
) -> None:
    with pytest.raises(TargetRefused, match=why):
        check_target(url, allow_private=True)


def test_a_public_address_is_accepted() -> None:
    check_target("https://93.184.216.34/hook")
