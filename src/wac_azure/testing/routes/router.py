"""A tiny case-insensitive path router for ARM URL templates."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from wac_azure.testing.backend.wire import EmuRequest, EmuResponse
from wac_azure.testing.routes.context import RouteContext

__all__ = ["Handler", "Router"]

#: A route handler: ``(emulator, request, path parameters) -> response``.
Handler = Callable[[RouteContext, EmuRequest, dict[str, str]], Awaitable[EmuResponse]]


class Router:
    """Maps ``(method, path)`` to a handler; ``{name}`` captures one segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, methods: str, template: str, handler: Handler) -> None:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        rx = re.compile("^" + pattern + "/?$", re.IGNORECASE)
        for method in methods.split(","):
            self._routes.append((method.strip().upper(), rx, handler))

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add(method, template, fn)
            return fn

        return deco

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """``(handler, params, path_known)``; ``path_known`` is true if another method matches."""
        known = False
        for m, rx, handler in self._routes:
            found = rx.match(path)
            if found is None:
                continue
            if m == method.upper():
                return handler, found.groupdict(), True
            known = True
        return None, {}, known

    def extend(self, other: Router) -> None:
        self._routes.extend(other._routes)
