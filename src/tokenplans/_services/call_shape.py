"""The one call shape every use case takes: the principal, then what is asked (a plan,
an amount), then keywords (``subject=`` and the options)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def subject_by_keyword(shape: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Refuse, with the call shape to use instead, a call that passes more positional
    arguments than the method takes: the shape of earlier releases, where the subject
    came positionally (``grant(admin, "alice", 500)``, ``usage(admin, "alice")``)."""

    def decorate(method: Callable[P, T]) -> Callable[P, T]:
        positional = sum(
            parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            for parameter in inspect.signature(method).parameters.values()
        )

        @functools.wraps(method)
        def checked(*args: P.args, **kwargs: P.kwargs) -> T:
            if len(args) > positional:
                raise TypeError(f"{method.__name__}() takes the subject as a keyword: call {shape}")
            return method(*args, **kwargs)

        return checked

    return decorate
