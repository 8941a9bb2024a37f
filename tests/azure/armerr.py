"""Build real azure-core HttpResponseErrors carrying ARM error bodies."""

from __future__ import annotations

import json

from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpResponse
from azure.mgmt.core.exceptions import ARMErrorFormat


class _Resp(HttpResponse):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(None, None)  # type: ignore[arg-type]
        self.status_code = status
        self.reason = "x"
        self._body = body.encode()
        self.headers: dict[str, str] = {}
        self.content_type = "application/json"

    def body(self) -> bytes:
        return self._body


def http_error(status: int, code: str, message: str = "m") -> HttpResponseError:
    """An HttpResponseError as the mgmt clients raise it for an ARM error body."""
    body = json.dumps({"error": {"code": code, "message": message}})
    return HttpResponseError(response=_Resp(status, body), error_format=ARMErrorFormat)
