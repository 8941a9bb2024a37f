"""``python -m wac_azure.testing serve``: run the ARM emulator as a standalone HTTPS server.

Prints shell ``export`` lines for the ``wac-azure`` command (its endpoint, the CA
file to trust, the test bearer token and the scenario's subscription) on stdout,
a short guide on stderr, then serves until Ctrl-C or SIGTERM, keeping its world
from one CLI call to the next::

    python -m wac_azure.testing serve --scenario demo > emu.env &
    . ./emu.env            # once the lines are there
    wac-azure discover
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
from collections.abc import Callable, Sequence

from wac_azure import WacAzureError
from wac_azure.testing import (
    DEFAULT_SUBSCRIPTION,
    ArmEmulator,
    ServerHandle,
    ThrottleConfig,
    run_server_forever,
)
from wac_azure.testing.fronts.server import check_loopback

__all__ = ["build_emulator", "export_lines", "load_setup", "main"]

#: VMs the demo scenario creates: (name, os, power state, public IP, NSG placement).
DEMO_VMS = (
    ("web-2022", "2022", "running", True, "nic"),
    ("app-2019", "2019", "running", False, "subnet"),
    ("old-2012r2", "2012-R2", "running", False, "nic"),
    ("parked-2025", "2025", "deallocated", False, "both"),
    ("linux-box", "ubuntu-22.04", "running", False, "nic"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wac_azure.testing",
        description="The wac_azure ARM emulator (wac_azure.testing), served over HTTPS "
        "on loopback.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the emulator over HTTPS until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    serve.add_argument(
        "--scenario",
        choices=("demo", "empty"),
        default="empty",
        help="demo: a few VMs in the default subscription and resource group",
    )
    serve.add_argument(
        "--throttle",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="apply ARM's per-subscription token buckets (default: on)",
    )
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="real seconds per emulated second (0.01 runs timed operations and the "
        "throttle's refill 100 times faster)",
    )
    serve.add_argument(
        "--lro-seconds",
        type=float,
        default=None,
        help="long-running operations take this many emulated seconds (default: one poll)",
    )
    serve.add_argument(
        "--extension-seconds",
        type=float,
        default=None,
        help="extension installs and removals take this many emulated seconds",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed for generated values and faults")
    serve.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="fault this fraction of requests with the preset faults (default 0)",
    )
    serve.add_argument(
        "--setup",
        metavar="MODULE:FUNCTION",
        action="append",
        default=[],
        help="call FUNCTION(emulator) from an importable MODULE before serving, to "
        "populate it (e.g. a benchmark's fleet); may be repeated",
    )
    serve.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line {base_url, ca_file, token, host, port} instead of text",
    )
    return parser


def build_emulator(
    *,
    scenario: str = "empty",
    throttle: bool = True,
    time_scale: float = 1.0,
    lro_seconds: float | None = None,
    extension_seconds: float | None = None,
    seed: int = 0,
    fault_rate: float = 0.0,
) -> ArmEmulator:
    """The emulator ``serve`` runs, populated for ``scenario`` (``"demo"`` or ``"empty"``)."""
    emu = ArmEmulator(
        seed=seed,
        lro_seconds=lro_seconds,
        extension_seconds=extension_seconds,
        time_scale=time_scale,
        throttle=ThrottleConfig(enabled=throttle),
    )
    if scenario == "demo":
        for name, os_name, power, public_ip, nsg in DEMO_VMS:
            emu.add_windows_vm(name, os=os_name, power_state=power, public_ip=public_ip, nsg=nsg)
    if fault_rate > 0:
        emu.faults.add_random(fault_rate)
    return emu


def load_setup(spec: str) -> Callable[[ArmEmulator], object]:
    """Resolve ``"package.module:function"`` to the function ``--setup`` calls."""
    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise ValueError(f"--setup wants MODULE:FUNCTION, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--setup {spec!r}: cannot import {module_name!r} ({exc})") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(f"--setup {spec!r}: {module_name!r} has no function {func_name!r}")
    setup: Callable[[ArmEmulator], object] = func
    return setup


def export_lines(handle: ServerHandle) -> str:
    """The shell ``export`` lines that point ``wac-azure`` at ``handle``'s server.

    ``WAC_AZURE_ENDPOINT``, ``WAC_AZURE_CA_FILE`` and ``WAC_AZURE_TOKEN`` (the
    emulator's test token: printing it here is intended, it opens nothing else), and
    ``WAC_AZURE_SUBSCRIPTION``, the subscription the scenarios fill. Values are
    quoted for POSIX shells.
    """
    values = (
        ("WAC_AZURE_ENDPOINT", handle.base_url),
        ("WAC_AZURE_CA_FILE", handle.ca_file),
        ("WAC_AZURE_TOKEN", handle.token),
        ("WAC_AZURE_SUBSCRIPTION", DEFAULT_SUBSCRIPTION),
    )
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values)


def _announce(handle: ServerHandle, *, as_json: bool, scenario: str) -> None:
    if as_json:
        print(json.dumps(handle.to_dict()), flush=True)
        return
    print(export_lines(handle), end="", flush=True)
    print(
        f"wac_azure.testing ARM emulator on {handle.base_url} (scenario: {scenario}).\n"
        "Paste the export lines above into your shell (or save stdout to a file and source\n"
        "it), then run wac-azure against this emulator: its world lasts until it stops.\n"
        "Press Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m wac_azure.testing``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        check_loopback(args.host)
        if not args.time_scale > 0:
            raise ValueError("--time-scale must be > 0")
        if not 0.0 <= args.fault_rate <= 1.0:
            raise ValueError("--fault-rate must be between 0 and 1")
        emu = build_emulator(
            scenario=args.scenario,
            throttle=args.throttle,
            time_scale=args.time_scale,
            lro_seconds=args.lro_seconds,
            extension_seconds=args.extension_seconds,
            seed=args.seed,
            fault_rate=args.fault_rate,
        )
        for spec in args.setup:
            load_setup(spec)(emu)
        run_server_forever(
            emu,
            args.host,
            args.port,
            lambda handle: _announce(handle, as_json=args.json, scenario=args.scenario),
        )
    except (WacAzureError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
