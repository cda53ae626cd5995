"""The result of one benchmark operation, as the S3 client hands it to the runner."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OpOutcome:
    """One operation: whether it succeeded, the body bytes moved and the listing entries seen.

    `error` names the failure ("HTTP 503", "bad bytes", "short body", an exception's class)
    and is empty on success.
    """

    ok: bool
    payload_bytes: int = 0
    items: int = 0
    error: str = ""


def failed(error: str) -> OpOutcome:
    return OpOutcome(ok=False, error=error)


def http_error(status: int) -> OpOutcome:
    return OpOutcome(ok=False, error=f"HTTP {status}")
