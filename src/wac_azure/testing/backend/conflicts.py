"""How Network answers a write to an NSG while another write to it is running.

Real Azure answers overlapping writes to one NSG in three ways, all seen in the wild
(AZURE_FACTS §5; errors.json):

* ``"429"`` – 429 ``RetryableError`` with detail ``RetryableErrorDueToAnotherOperation``
  ("Operation PutSecurityRuleOperation (…) is updating resource …"),
  errors.json ``net-429-retryable-anotherop-*``;
* ``"supersede"`` – the new write is accepted and the running one ends ``Canceled`` with
  detail ``CanceledAndSupersededDueToAnotherOperation``; its write does not stick
  (errors.json ``net-lro-canceled-superseded-putsecurityrule``);
* ``"409"`` – 409 ``AnotherOperationInProgress`` (what Network answers for dependent
  resources, errors.json ``net-409-anotheroperationinprogress-subnet``).

A :class:`ConflictPolicy` picks one per conflict, from weights and a seed: the same seed,
NSG and conflict count give the same answer, whatever else runs concurrently.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping

__all__ = ["NSG_OUTCOMES", "VM_OUTCOMES", "ConflictPolicy"]

#: The answers a conflicting NSG write can get.
NSG_OUTCOMES = ("409", "429", "supersede")
#: The answers a conflicting VM/extension write can get: ``"409"`` (Compute's ``Conflict``,
#: errors.json ``compute-409-conflict-concurrent-request``) or ``"preempt"`` (accepted; the
#: running operation ends ``Canceled`` / ``OperationPreempted``, errors.json
#: ``compute-lro-canceled-operationpreempted``).
VM_OUTCOMES = ("409", "preempt")


class ConflictPolicy:
    """Seeded choice of the answer to an overlapping write (``"429"``, ``"supersede"``...).

    ``outcomes`` is one outcome name or a mapping of names to weights
    (``{"429": 3, "supersede": 1}``). ``counts`` holds how often each was chosen.
    """

    def __init__(
        self,
        outcomes: str | Mapping[str, float] = "429",
        *,
        seed: int = 0,
        allowed: tuple[str, ...] = NSG_OUTCOMES,
    ) -> None:
        weights = {outcomes: 1.0} if isinstance(outcomes, str) else dict(outcomes)
        unknown = [k for k in weights if k not in allowed]
        if unknown or not weights:
            raise ValueError(f"conflict outcomes are {', '.join(allowed)}; got {outcomes!r}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"NSG conflict weights must be >= 0 with a positive sum: {outcomes!r}")
        self.weights = {k: float(v) for k, v in weights.items() if v > 0}
        self.seed = seed
        self.counts: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def choose(self, resource_id: str) -> str:
        """The answer to the next conflicting write to ``resource_id``."""
        key = resource_id.lower().rstrip("/")
        with self._lock:
            n = self._seen.get(key, 0) + 1
            self._seen[key] = n
            digest = hashlib.blake2b(f"{self.seed}|{key}|{n}".encode(), digest_size=8).digest()
            unit = int.from_bytes(digest, "big") / 2.0**64
            total = sum(self.weights.values())
            acc = 0.0
            chosen = next(iter(self.weights))
            for name, weight in self.weights.items():
                acc += weight / total
                if unit < acc:
                    chosen = name
                    break
            self.counts[chosen] = self.counts.get(chosen, 0) + 1
            return chosen

    def reset(self) -> None:
        """Forget the counts (choices restart from the seed)."""
        with self._lock:
            self.counts.clear()
            self._seen.clear()

    def __repr__(self) -> str:
        return f"ConflictPolicy({self.weights}, seed={self.seed}, counts={self.counts})"
