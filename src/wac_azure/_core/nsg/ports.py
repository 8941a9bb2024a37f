"""Port ranges of security rules: ``*``, ``N`` and ``N-M``."""

from __future__ import annotations

import attrs

_MAX = 65535


@attrs.frozen(order=True)
class PortRange:
    """An inclusive TCP/UDP port range; ``*`` is ``PortRange(0, 65535)``."""

    low: int
    high: int

    @property
    def is_any(self) -> bool:
        """Whether the range covers every port."""
        return self.low == 0 and self.high == _MAX

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        if self.is_any:
            return "*"
        if self.low == self.high:
            return str(self.low)
        return f"{self.low}-{self.high}"


ANY_PORT = PortRange(0, _MAX)
"""Every port (``*``): 0-65535."""


def _port(text: str) -> int | None:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        return None
    value = int(text)
    return value if 0 <= value <= _MAX else None


def parse_port_range(value: object) -> PortRange | None:
    """Parse ``*``, ``N`` or ``N-M`` (an ``int`` is accepted too); ``None`` if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return PortRange(value, value) if 0 <= value <= _MAX else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text == "*":
        return ANY_PORT
    if "-" in text:
        low_text, _, high_text = text.partition("-")
        low, high = _port(low_text), _port(high_text)
        if low is None or high is None or low > high:
            return None
        return PortRange(low, high)
    port = _port(text)
    return None if port is None else PortRange(port, port)
