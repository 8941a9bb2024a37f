"""Waiting for an ARM long-running operation by its status monitor alone."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from wac_azure._azure.session import AzureSession


async def wait_for_operation(client: Any, headers: Any, session: AzureSession) -> None:
    """Wait for a PUT's long-running operation by polling its status monitor only.

    One GET per poll and no final GET of the resource (which ``poller.result()``
    adds). A rule is in force only once its operation ends ``Succeeded``: ARM
    accepting the PUT (201, ``Updating``) is not enough, the operation can still
    end ``Failed`` (``OperationPreempted``) and roll the rule back. ``Failed``
    raises azure-core's ``HttpResponseError`` carrying the operation's error,
    which ``_azure.retry.retrying`` retries when its code is transient.
    ``headers`` are those of ARM's answer to the PUT.
    """
    url = headers.get("Azure-AsyncOperation") or headers.get("Location")
    if not url:
        return  # ARM answered synchronously
    fallback = session.polling_interval
    while True:
        try:
            delay = float(headers.get("Retry-After") or 0)
        except ValueError:
            delay = 0.0
        await session.sleep(delay if delay > 0 else (1.0 if fallback is None else fallback))
        status, resp = await read_operation(client, url)
        if status == "succeeded":
            return
        if status in ("failed", "canceled", "cancelled"):
            raise HttpResponseError(response=resp)
        headers = resp.headers


async def read_operation(client: Any, url: str) -> tuple[str, Any]:
    """One GET of an operation's status monitor: its ``status`` (lower case, ``""``
    when the answer has none) and azure-core's response; an error answer raises
    ``HttpResponseError``."""
    resp = await client.send_request(HttpRequest("GET", url))
    if resp.status_code >= 400:
        raise HttpResponseError(response=resp)
    try:
        status = str((resp.json() or {}).get("status", "")).lower()
    except ValueError:
        status = ""
    return status, resp
