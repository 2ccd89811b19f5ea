"""What every transport shares: the outcome of one send, the retry policy, the error log.

A transport sends one rendered message to one receiver URL and says how it went
(``SendOutcome``): sent, failed for now (``permanent=False``: retry later, perhaps after the
receiver's ``Retry-After``), or refused for good (``permanent=True``: dead-letter at once).
Each transport classifies its own channel's answers; nothing here knows a status code.

Retries are not a loop around the call: the outbox keeps each row's next attempt in the
database, so a retry survives a restart and holds the whole receiver. ``RetryPolicy`` computes
that next wait with tenacity's exponential wait strategies (chosen over stamina because
tenacity's wait strategies are plain callables we can evaluate to a persisted time; stamina
only wraps a call in its own loop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon import log

_log = log.get(__name__)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    ok: bool
    permanent: bool = False
    retry_after: float | None = None  # seconds, when the channel said so
    error: str = ""


def sent() -> SendOutcome:
    return SendOutcome(True)


def transient(error: str, retry_after: float | None = None) -> SendOutcome:
    return SendOutcome(False, permanent=False, retry_after=retry_after, error=error)


def permanent(error: str) -> SendOutcome:
    return SendOutcome(False, permanent=True, error=error)


class Transport(Protocol):
    """One channel: ``notify`` sends and classifies; it never raises for a delivery failure."""

    def notify(self, title: str, body: str, body_format: str, *, message_id: str,
               text: str = "") -> SendOutcome:
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """The wait before the next attempt of a failed message: between half and all of
    ``base``·2^(attempts-1) seconds, at most ``cap`` (tenacity's wait strategies)."""

    base: float = 2.0
    cap: float = 600.0

    def delay(self, attempts: int) -> float:
        import tenacity

        # Half the exponential ceiling for sure, the other half at random ("equal jitter"):
        # a busy receiver is never hit again at once, and retries of many rows spread out.
        half = {"multiplier": self.base / 2, "max": self.cap / 2}
        wait: Any = (tenacity.wait_exponential(**half)
                     + tenacity.wait_random_exponential(**half))
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = max(1, attempts)
        return float(wait(state))


@dataclass
class ErrorLog:
    """One log line per change of a receiver's error state, not one per attempt.

    A receiver that fails logs ``alert_receiver_failing`` once with its error; the same error
    again logs nothing; a different error logs again; the first success after failures logs
    ``alert_receiver_recovered``. Every attempt is still counted in the outbox row.
    """

    state: dict[str, str] = field(default_factory=dict)

    def record(self, receiver: str, outcome: SendOutcome, **context: object) -> bool:
        """Note an outcome; True when it changed the receiver's state (and was logged)."""
        before = self.state.get(receiver, "")
        if outcome.ok:
            if before:
                self.state.pop(receiver, None)
                _log.info("alert_receiver_recovered", receiver=receiver, was=before, **context)
                return True
            return False
        if outcome.error == before:
            return False
        self.state[receiver] = outcome.error
        _log.warning("alert_receiver_failing", receiver=receiver, error=outcome.error,
                     permanent=outcome.permanent, **context)
        return True


ERRORS = ErrorLog()  # the process's view; deliveries of one daemon share it
