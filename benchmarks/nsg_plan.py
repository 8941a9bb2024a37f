"""Benchmark: NSG evaluation and rule planning against two NSGs of 1,000 rules each.

Run: ``.venv/bin/python benchmarks/nsg_plan.py [--rules 1000] [--repeat 20]``.
Prints one JSON line per measurement (no assertions on time).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from typing import Any

from wac_azure import PrivateAccess, PublicAccess, VmTarget, plan_network
from wac_azure._core.facts import NicFacts, PublicIpFacts, VmFacts
from wac_azure._core.nsg import Flow, NetworkSecurityGroup, evaluate

SUB = "00000000-0000-0000-0000-000000000001"
NET = f"/subscriptions/{SUB}/resourceGroups/bench/providers/Microsoft.Network"
PREFIXES = [
    "*",
    "10.1.0.0/16",
    "10.2.3.4",
    "192.168.0.0/24",
    "198.51.100.0/24",
    "Storage.WestEurope",
    "AzureMonitor",
    "VirtualNetwork",
    "2001:db8::/48",
]


def make_nsg(name: str, rules: int, rnd: random.Random) -> dict[str, Any]:
    """NSG JSON with ``rules`` custom rules (half per direction), a deny-all last in each."""
    out = []
    per_direction = rules // 2
    for direction in ("Inbound", "Outbound"):
        for i in range(per_direction):
            prio = 100 + i * 3 + 1  # leaves free priorities in between
            if i == per_direction - 1:
                props = {
                    "protocol": "*",
                    "sourceAddressPrefix": "*",
                    "destinationAddressPrefix": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "access": "Deny",
                }
            else:
                port = rnd.randint(1, 60000)
                props = {
                    "protocol": rnd.choice(["Tcp", "Udp", "*"]),
                    "sourceAddressPrefixes": rnd.sample(PREFIXES[1:], 2),
                    "destinationAddressPrefix": rnd.choice(PREFIXES[1:]),
                    "sourcePortRange": "*",
                    "destinationPortRanges": [str(port), f"{port + 10}-{port + 20}"],
                    "access": rnd.choice(["Allow", "Deny"]),
                }
            props.update({"priority": prio, "direction": direction})
            out.append({"name": f"{direction[:2]}{i}", "properties": props})
    return {
        "id": f"{NET}/networkSecurityGroups/{name}",
        "name": name,
        "location": "westeurope",
        "properties": {"securityRules": out},
    }


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = None
    start = time.perf_counter()
    for _ in range(repeat):
        result = fn()
    return (time.perf_counter() - start) / repeat, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=1000, help="rules per NSG")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rnd = random.Random(0)
    nic_json = make_nsg("nic-nsg", args.rules, rnd)
    subnet_json = make_nsg("subnet-nsg", args.rules, rnd)

    parse_s, nic_nsg = timed(lambda: NetworkSecurityGroup.from_arm(nic_json), args.repeat)
    subnet_nsg = NetworkSecurityGroup.from_arm(subnet_json)
    print(json.dumps({"what": "parse_nsg", "rules": args.rules, "seconds": round(parse_s, 6)}))

    vnet = ("10.0.0.0/16",)
    tags = {"WindowsAdminCenter": ["13.66.201.96/28"], "Storage.WestEurope": ["20.38.108.0/23"]}
    flows = {
        "outbound_wac": Flow("Outbound", "Tcp", "10.0.0.4", None, "WindowsAdminCenter", 443),
        "inbound_6516": Flow("Inbound", "Tcp", "203.0.113.7", None, "10.0.0.4", 6516),
    }
    for label, flow in flows.items():
        eval_s, verdict = timed(
            lambda flow=flow: evaluate(
                flow,
                nic_nsg=nic_nsg,
                subnet_nsg=subnet_nsg,
                vnet_prefixes=vnet,
                service_tags=tags,
            ),
            args.repeat,
        )
        print(
            json.dumps(
                {
                    "what": "evaluate",
                    "flow": label,
                    "rules_per_nsg": args.rules,
                    "seconds": round(eval_s, 6),
                    "access": verdict.access.value,
                    "rule": verdict.rule,
                }
            )
        )

    target = VmTarget.from_parts(SUB, "bench", "vm1")
    nic = NicFacts(
        id=f"{NET}/networkInterfaces/vm1-nic",
        name="vm1-nic",
        primary=True,
        private_ips=("10.0.0.4",),
        public_ips=(PublicIpFacts(id=f"{NET}/publicIPAddresses/vm1-ip", name="vm1-ip"),),
        nsg_id=nic_nsg.id,
        subnet_nsg_id=subnet_nsg.id,
    )
    facts = VmFacts(
        target=target,
        vm_resource_id=target.resource_id,
        location="westeurope",
        nics=(nic,),
        nsgs={nic_nsg.id: nic_nsg, subnet_nsg.id: subnet_nsg},
        vnet_prefixes=vnet,
    )
    for label, access in (
        ("private", PrivateAccess()),
        ("public", PublicAccess(["203.0.113.7", "198.51.100.0/24"])),
    ):
        plan_s, plan = timed(
            lambda access=access: plan_network(facts, access=access, service_tags=tags),
            args.repeat,
        )
        print(
            json.dumps(
                {
                    "what": "plan",
                    "access": label,
                    "rules_per_nsg": args.rules,
                    "nsgs": 2,
                    "seconds": round(plan_s, 6),
                    "changes": len(plan.changes),
                    "blocking": len(plan.blocking),
                }
            )
        )


if __name__ == "__main__":
    main()
