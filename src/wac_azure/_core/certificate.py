"""What the TLS probe reports, and the certificate parser it uses (pure).

:class:`ProbeResult` holds the three results of a probe (connect, handshake,
certificate) with a :class:`ProbeStatus` each; :func:`parse_certificate`
reads a certificate's subject, issuer, validity and names from its DER bytes
with a small parser, so no cryptography package is needed. The probe itself
(``_azure.probe``) does the network part.
"""

from __future__ import annotations

import datetime as _dt
import enum
import ipaddress
import logging
from typing import Any

import attrs

_log = logging.getLogger(__name__)


class ProbeStatus(enum.Enum):
    """Outcome of one stage of the probe."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


@attrs.frozen
class CertificateInfo:
    """What the server's certificate says, and whether it can be trusted.

    ``subject`` and ``issuer`` are RFC 4514-like strings (``CN=...,O=...``);
    ``not_before`` / ``not_after`` are timezone-aware UTC datetimes (``None``
    when unreadable); ``names`` are the subjectAltName DNS names and IP
    addresses; ``self_signed`` is true when subject and issuer are identical;
    ``verified`` whether the chain verifies against the system CAs (or the
    ``cafile`` given), ``None`` when that could not be tried;
    ``verify_error`` the reason it does not; ``hostname_matches`` whether the
    probed host is among ``names`` (or the subject CN when there are none).
    """

    subject: str | None = None
    issuer: str | None = None
    not_before: _dt.datetime | None = None
    not_after: _dt.datetime | None = None
    names: tuple[str, ...] = ()
    self_signed: bool | None = None
    verified: bool | None = None
    verify_error: str | None = None
    hostname_matches: bool | None = None

    def expired(self, now: _dt.datetime | None = None) -> bool | None:
        """Whether ``not_after`` is in the past (``None`` when unknown)."""
        if self.not_after is None:
            return None
        return (now or _dt.datetime.now(_dt.UTC)) > self.not_after

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "names": list(self.names),
            "self_signed": self.self_signed,
            "verified": self.verified,
            "verify_error": self.verify_error,
            "hostname_matches": self.hostname_matches,
        }


@attrs.frozen
class ProbeResult:
    """The three stages of one probe of ``host:port``.

    ``connect`` / ``handshake`` are :class:`ProbeStatus` values with the
    error text in ``connect_error`` / ``handshake_error``; ``certificate`` is
    ``None`` unless the handshake completed. ``elapsed`` is in seconds.
    """

    host: str
    port: int
    timeout: float
    connect: ProbeStatus
    connect_error: str | None = None
    handshake: ProbeStatus = ProbeStatus.SKIPPED
    handshake_error: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    certificate: CertificateInfo | None = None
    elapsed: float = 0.0

    @property
    def url(self) -> str:
        """``https://host:port`` (IPv6 bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ok(self) -> bool:
        """Connected and completed a TLS handshake (whatever the certificate)."""
        return self.connect is ProbeStatus.OK and self.handshake is ProbeStatus.OK

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "timeout": self.timeout,
            "connect": self.connect.value,
            "connect_error": self.connect_error,
            "handshake": self.handshake.value,
            "handshake_error": self.handshake_error,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "certificate": self.certificate.to_dict() if self.certificate else None,
            "elapsed": round(self.elapsed, 3),
        }

    def __str__(self) -> str:
        parts = [f"{self.url}: connect {self.connect.value}"]
        if self.connect_error:
            parts.append(f"({self.connect_error})")
        if self.connect is ProbeStatus.OK:
            parts.append(f"; TLS handshake {self.handshake.value}")
            if self.handshake_error:
                parts.append(f"({self.handshake_error})")
            elif self.tls_version:
                parts.append(f"({self.tls_version})")
        cert = self.certificate
        if cert is not None:
            trust = (
                "trusted"
                if cert.verified
                else f"not trusted: {cert.verify_error}"
                if cert.verified is False
                else "trust unknown"
            )
            parts.append(f"; certificate {cert.subject or '?'} issued by {cert.issuer or '?'}")
            if cert.not_after:
                parts.append(f", valid until {cert.not_after:%Y-%m-%d %H:%M} UTC")
            parts.append(f", {trust}")
        return " ".join(parts).replace(" ;", ";").replace(" ,", ",")


# --------------------------------------------------------------------------- DER


class _DerError(ValueError):
    pass


def _read(data: bytes, pos: int) -> tuple[int, int, int]:
    """Read one TLV header at ``pos``: (tag, content start, content end)."""
    if pos + 2 > len(data):
        raise _DerError("truncated")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise _DerError("bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise _DerError("truncated content")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, s, e = _read(data, pos)
        out.append((tag, s, e))
        pos = e
    return out


def _oid(raw: bytes) -> str:
    if not raw:
        return ""
    parts = [raw[0] // 40, raw[0] % 40]
    value = 0
    for b in raw[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


_NAME_OIDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "1.2.840.113549.1.9.1": "emailAddress",
}


def _string(tag: int, raw: bytes) -> str:
    if tag == 0x1E:  # BMPString
        return raw.decode("utf-16-be", "replace")
    return raw.decode("utf-8", "replace")


def _name(data: bytes, start: int, end: int) -> tuple[str, dict[str, str]]:
    parts: list[str] = []
    fields: dict[str, str] = {}
    for _, rs, re_ in _children(data, start, end):  # SET per RDN
        for _, as_, ae in _children(data, rs, re_):  # SEQUENCE {oid, value}
            kids = _children(data, as_, ae)
            if len(kids) < 2:
                continue
            oid = _oid(data[kids[0][1] : kids[0][2]])
            vtag, vs, ve = kids[1]
            value = _string(vtag, data[vs:ve])
            key = _NAME_OIDS.get(oid, oid)
            fields.setdefault(key, value)
            parts.append(f"{key}={value}")
    return ",".join(reversed(parts)), fields


def _time(tag: int, raw: bytes) -> _dt.datetime | None:
    text = raw.decode("ascii", "replace").rstrip("Z")
    try:
        if tag == 0x17:  # UTCTime YYMMDDHHMMSS
            parsed = _dt.datetime.strptime(text, "%y%m%d%H%M%S")
        else:  # GeneralizedTime YYYYMMDDHHMMSS
            parsed = _dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return parsed.replace(tzinfo=_dt.UTC)


def _alt_names(data: bytes, start: int, end: int) -> list[str]:
    names: list[str] = []
    for _, es, ee in _children(data, start, end):  # Extension SEQUENCE
        kids = _children(data, es, ee)
        if not kids or _oid(data[kids[0][1] : kids[0][2]]) != "2.5.29.17":
            continue
        octets = kids[-1]
        _, ss, se = _read(data, octets[1])  # the GeneralNames SEQUENCE inside the OCTET STRING
        for gtag, gs, ge in _children(data, ss, se):
            raw = data[gs:ge]
            if gtag == 0x82:  # dNSName
                names.append(raw.decode("ascii", "replace"))
            elif gtag == 0x87 and len(raw) in (4, 16):  # iPAddress
                names.append(str(ipaddress.ip_address(raw)))
    return names


def _host_matches(host: str, names: tuple[str, ...], cn: str | None) -> bool:
    candidates = names or ((cn,) if cn else ())
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for name in candidates:
        if ip is not None:
            try:
                if ipaddress.ip_address(name) == ip:
                    return True
            except ValueError:
                continue
        else:
            lowered, want = name.lower(), host.lower().rstrip(".")
            if lowered == want:
                return True
            if lowered.startswith("*.") and "." in want and want.split(".", 1)[1] == lowered[2:]:
                return True
    return False


def parse_certificate(der: bytes, *, host: str | None = None) -> CertificateInfo:
    """Read subject, issuer, validity and subjectAltNames from a DER certificate.

    Unreadable parts are left ``None``; never raises.
    """
    try:
        _, cs, ce = _read(der, 0)  # Certificate
        _tbs_tag, ts, te = _children(der, cs, ce)[0]
        kids = _children(der, ts, te)
        i = 1 if kids and kids[0][0] == 0xA0 else 0  # optional [0] version
        # serial, signature, issuer, validity, subject, spki, [extensions...]
        issuer_t, validity_t, subject_t = kids[i + 2], kids[i + 3], kids[i + 4]
        issuer, _ = _name(der, issuer_t[1], issuer_t[2])
        subject, subject_fields = _name(der, subject_t[1], subject_t[2])
        times = _children(der, validity_t[1], validity_t[2])
        not_before = _time(times[0][0], der[times[0][1] : times[0][2]]) if times else None
        not_after = _time(times[1][0], der[times[1][1] : times[1][2]]) if len(times) > 1 else None
        names: list[str] = []
        for tag, s, _e in kids[i + 6 :]:
            if tag == 0xA3:  # [3] extensions
                _, xs, xe = _read(der, s)
                names = _alt_names(der, xs, xe)
        self_signed = der[issuer_t[1] : issuer_t[2]] == der[subject_t[1] : subject_t[2]]
    except (_DerError, IndexError, ValueError) as exc:
        _log.debug("could not parse the server certificate: %s", exc)
        return CertificateInfo()
    return CertificateInfo(
        subject=subject or None,
        issuer=issuer or None,
        not_before=not_before,
        not_after=not_after,
        names=tuple(names),
        self_signed=self_signed,
        hostname_matches=(
            _host_matches(host, tuple(names), subject_fields.get("CN")) if host else None
        ),
    )
