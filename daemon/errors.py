"""Every error scanwatch raises on purpose, in one tree.

A user never sees a traceback for one of these: the CLI prints ``scanwatch: <message>`` on one
line to stderr and exits with the error's ``exit_code``.

::

    ScanwatchError                 exit 1  base: a runtime failure
    ├── UsageError                 exit 2  bad command-line use
    │   └── UnknownTarget          exit 2  a registry/project/repository/tag that does not exist
    ├── ConfigError                exit 2  the configuration cannot be used (lists every problem)
    ├── ReportFormatError          exit 2  a report file that is not a Harbor or Trivy report
    ├── StoreError                 exit 1  the history database cannot be used
    │   ├── SchemaTooNew           exit 1  the database was written by a newer scanwatch
    │   └── DatabaseLocked         exit 1  another instance holds the database
    ├── HarborError                exit 1  a registry call failed (after retries where they apply)
    │   ├── NotFound               404
    │   ├── Unsupported            400 on scan: the artifact cannot be scanned
    │   ├── AlreadyScanning        409 on scan: a scan is Pending or Running
    │   ├── NoScanner              412: no scanner, or the scanner is disabled
    │   ├── AuthFailed             401/403
    │   │   └── CredentialsRejected    Harbor took the login as anonymous (wrong, expired, locked)
    │   ├── RateLimited            429 past the retry budget
    │   ├── ServerError            5xx or connection failure past the retry budget
    │   └── BadResponse            a body that is not what Harbor sends
    ├── DeliveryError              exit 1  an alert could not be delivered
    │   └── PermanentDeliveryError         the receiver refuses for good (401, 404): do not retry
    └── FeedError                  exit 1  an intel feed (KEV, EPSS, VEX) could not be used
        └── FeedInvalid                    fetched, but not what the feed publishes
"""

from __future__ import annotations


class ScanwatchError(Exception):
    """Base of every deliberate scanwatch error; its message is one line for the user."""

    exit_code = 1


class UsageError(ScanwatchError):
    exit_code = 2


class UnknownTarget(UsageError):
    """A target names a registry, project, repository or tag that does not exist."""


class ConfigError(ScanwatchError):
    """The configuration cannot be used. ``problems`` holds one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str], path: str | None = None) -> None:
        self.problems = list(problems)
        self.path = path
        where = f"{path}: " if path else ""
        count = len(self.problems)
        head = f"{where}{count} problem{'s' if count != 1 else ''} in the configuration"
        super().__init__(head if count != 1 else f"{where}{self.problems[0]}")

    def lines(self) -> list[str]:
        return list(self.problems)


class ReportFormatError(ScanwatchError):
    """A report file that cannot be read as a Harbor or Trivy vulnerability report."""

    exit_code = 2


class StoreError(ScanwatchError):
    pass


class SchemaTooNew(StoreError):
    pass


class DatabaseLocked(StoreError):
    pass


class HarborError(ScanwatchError):
    """A registry call failed. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(HarborError):
    pass


class Unsupported(HarborError):
    pass


class AlreadyScanning(HarborError):
    pass


class NoScanner(HarborError):
    pass


class AuthFailed(HarborError):
    pass


class CredentialsRejected(AuthFailed):
    """Harbor accepted no credentials: it answers a failed login as an anonymous request
    (``/systeminfo`` without ``harbor_version``, public projects only), not with a 401."""


class RateLimited(HarborError):
    pass


class ServerError(HarborError):
    pass


class BadResponse(HarborError):
    pass


class DeliveryError(ScanwatchError):
    pass


class PermanentDeliveryError(DeliveryError):
    pass


class FeedError(ScanwatchError):
    pass


class FeedInvalid(FeedError):
    pass
