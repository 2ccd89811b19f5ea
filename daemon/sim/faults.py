"""Which fault, if any, a request gets (seeded, thread-safe)."""

from __future__ import annotations

import fnmatch
import random
import threading
from collections.abc import Iterable

from daemon.sim.options import FaultRule
from daemon.sim.vulndb import stable_seed


class Faults:
    def __init__(self, seed: int, rules: Iterable[FaultRule]) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(stable_seed(seed, "faults"))
        self.rules: tuple[FaultRule, ...] = tuple(rules)

    def set(self, rules: Iterable[FaultRule]) -> None:
        with self._lock:
            self.rules = tuple(rules)

    def pick(self, method: str, path: str) -> FaultRule | None:
        rules = self.rules
        if not rules:
            return None
        with self._lock:
            for rule in rules:
                if rule.method not in ("*", method) or not fnmatch.fnmatchcase(path, rule.path):
                    continue
                if rule.rate >= 1.0 or self._rng.random() < rule.rate:
                    return rule
        return None
