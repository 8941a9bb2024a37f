"""Another writer of the chaos fleet's NSGs, run as its own OS process.

``python -m tests.chaos._other_writer`` reads a JSON job on stdin's first line (the
HTTPS emulator's ``base_url``, ``ca_file`` and ``token``, the subscription, the NSGs as
``[resource group, name]`` pairs, a seed) and talks to the emulator with the plain
``azure-mgmt-network`` aio client, the way a colleague's script or a pipeline would:
no etags, no library. It creates its own rules (``OtherWriter-*``) in every NSG,
prints ``ready``, then keeps updating them (ports, description) and creating one more
per NSG until a ``stop`` line arrives on stdin; then it prints, as one JSON line, the
last body it wrote successfully for each of its rules. A write that fails (another
operation in progress, a superseded operation, a priority some other writer took) is
sent again (with another priority when the priority was taken) until it succeeds, so
the bodies printed are the ones in force as far as this writer knows.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, HttpResponseError
from azure.mgmt.network.aio import NetworkManagementClient

PREFIX = "OtherWriter"
#: The writer's rules open 192.0.2.0/24 (TEST-NET-1) to ports 8400-8599 and deny UDP
#: 161 outbound: traffic the chaos run neither asks for nor judges, so what they allow
#: is theirs alone.
SOURCE = "192.0.2.0/24"
#: The band the library plans in too (it takes the lowest free priorities, from 100): the
#: two writers race for the same numbers.
PRIORITIES = range(100, 130)


class _Token:
    """An async TokenCredential handing out the emulator's (test) token."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> _Token:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def _port(index: int, version: int) -> int:
    return 8400 + (index * 7 + version) % 200


def _body(port: int, priority: int, version: int, direction: str) -> dict[str, Any]:
    if direction == "Inbound":
        return {
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "sourceAddressPrefix": SOURCE,
            "destinationAddressPrefix": "VirtualNetwork",
            "destinationPortRange": str(port),
            "access": "Allow",
            "priority": priority,
            "direction": "Inbound",
            "description": f"other writer v{version}",
        }
    return {
        "protocol": "Udp",
        "sourcePortRange": "*",
        "sourceAddressPrefix": "VirtualNetwork",
        "destinationAddressPrefix": "198.18.0.0/15",
        "destinationPortRange": "161",
        "access": "Deny",
        "priority": priority,
        "direction": "Outbound",
        "description": f"other writer v{version}",
    }


class Writer:
    def __init__(self, job: dict[str, Any], client: NetworkManagementClient) -> None:
        self.job = job
        self.client = client
        self.rng = random.Random(job["seed"])
        #: rule id (lower case) -> the body last written successfully
        self.written: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.retries = 0
        self.priority_moves = 0
        #: NSGs (resource group, name; lower case) where the first rule is written
        self.ready: set[tuple[str, str]] = set()

    async def put(self, rg: str, nsg: str, name: str, body: dict[str, Any]) -> None:
        """PUT the rule until it sticks; on a taken priority, take another one."""
        for _attempt in range(200):
            try:
                poller = await self.client.security_rules.begin_create_or_update(
                    rg, nsg, name, {"properties": body}
                )
                result = await poller.result()
            except HttpResponseError as exc:
                self.retries += 1
                if "SecurityRuleConflict" in str(exc):
                    self.priority_moves += 1
                    body = {**body, "priority": self.rng.choice(PRIORITIES)}
                await asyncio.sleep(0.01)
                continue
            except AzureError:
                self.retries += 1
                await asyncio.sleep(0.01)
                continue
            self.writes += 1
            self.written[str(result.id).lower()] = body
            return
        raise RuntimeError(f"{PREFIX}: could not write {name} in {nsg}")

    async def nsg_life(self, rg: str, nsg: str, index: int, stop: asyncio.Event) -> None:
        """Create this NSG's rule, then update it and add a second one until ``stop``."""
        inbound = _body(_port(index, 1), self.rng.choice(PRIORITIES), 1, "Inbound")
        await self.put(rg, nsg, f"{PREFIX}-In", inbound)
        self.ready.add((rg.lower(), nsg.lower()))
        version = 1
        while not stop.is_set():
            await asyncio.sleep(self.rng.uniform(0.05, 0.25))
            version += 1
            current = self.written[self._id(rg, nsg, f"{PREFIX}-In")]
            inbound = {
                **current,
                "destinationPortRange": str(_port(index, version)),
                "description": f"other writer v{version}",
            }
            if self.rng.random() < 0.3:  # move it, too
                inbound["priority"] = self.rng.choice(PRIORITIES)
            await self.put(rg, nsg, f"{PREFIX}-In", inbound)
            if version == 3:
                out = _body(161, self.rng.choice(PRIORITIES), version, "Outbound")
                await self.put(rg, nsg, f"{PREFIX}-Out", out)

    def _id(self, rg: str, nsg: str, name: str) -> str:
        return (
            f"/subscriptions/{self.job['subscription']}/resourceGroups/{rg}/providers/"
            f"Microsoft.Network/networkSecurityGroups/{nsg}/securityRules/{name}"
        ).lower()


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    job = json.loads(await reader.readline())
    async with NetworkManagementClient(
        _Token(job["token"]),  # type: ignore[arg-type]
        job["subscription"],
        base_url=job["base_url"],
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=job["ca_file"],
        polling_interval=0.02,
        retry_backoff_factor=0.01,
        retry_backoff_max=0.05,
        retry_total=20,
    ) as client:
        writer = Writer(job, client)
        stop = asyncio.Event()
        lives = [
            asyncio.ensure_future(writer.nsg_life(rg, nsg, i, stop))
            for i, (rg, nsg) in enumerate(job["nsgs"])
        ]
        while len(writer.ready) < len(lives):  # every NSG has its first rule
            await asyncio.sleep(0.01)
            for life in lives:
                if life.done() and life.exception() is not None:
                    raise life.exception()  # type: ignore[misc]
        print("ready", flush=True)
        await reader.readline()  # "stop" (or the pipe closed)
        stop.set()
        await asyncio.gather(*lives)
    print(
        json.dumps(
            {
                "written": writer.written,
                "writes": writer.writes,
                "retries": writer.retries,
                "priority_moves": writer.priority_moves,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
