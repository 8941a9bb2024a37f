"""Build real azure-core HttpResponseErrors carrying ARM error bodies."""

from __future__ import annotations

import json

from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpResponse
from azure.mgmt.core.exceptions import ARMErrorFormat


class _Resp(HttpResponse):
    """An azure-core transport response holding a fixed body (as azure-core's own tests
    build them): ``HttpResponseError`` parses it exactly as it parses a live answer."""

    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(None, None)  # type: ignore[arg-type]
        self.status_code = status
        self.reason = "x"
        self._body = body.encode()
        self.headers: dict[str, str] = dict(headers or {})
        self.content_type = "application/json"

    def body(self) -> bytes:
        return self._body


def http_error(status: int, code: str, message: str = "m") -> HttpResponseError:
    """An HttpResponseError as the mgmt clients raise it for an ARM error body."""
    body = json.dumps({"error": {"code": code, "message": message}})
    return HttpResponseError(response=_Resp(status, body), error_format=ARMErrorFormat)


def http_error_body(
    status: int, body: object, headers: dict[str, object] | None = None
) -> HttpResponseError:
    """An HttpResponseError for a recorded ARM body (repeated headers joined with ", ")."""
    flat = {
        k: ", ".join(map(str, v)) if isinstance(v, list) else str(v)
        for k, v in (headers or {}).items()
    }
    response = _Resp(status, json.dumps(body), flat)
    return HttpResponseError(response=response, error_format=ARMErrorFormat)
