"""Where a webhook may be sent: an http(s) URL whose host resolves only to public
addresses, unless private targets are allowed (a receiver on the same machine or
network). Checked when an endpoint is created and again before every delivery, so a
name that later resolves to an internal address is refused then too."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048


class TargetRefused(ValueError):
    """The URL is not one a webhook may be sent to; the message says why."""


def check_target(url: str, *, allow_private: bool = False) -> None:
    """Raise :class:`TargetRefused` unless ``url`` is an absolute http(s) URL of at most
    2048 characters, without credentials, whose host resolves (every address of it) to
    public addresses, or to any address when ``allow_private``."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"url must be 1 to {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise TargetRefused(f"url is malformed: {error}") from error
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("url must be http or https")
    if not parts.hostname:
        raise TargetRefused("url must name a host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("url must not carry credentials")
    if allow_private:
        return
    try:
        found = socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise TargetRefused(f"host {parts.hostname!r} does not resolve") from error
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not address.is_global or address.is_multicast:
            raise TargetRefused(
                f"host {parts.hostname!r} resolves to a private or reserved address "
                f"({address}); allow private targets to send there"
            )
