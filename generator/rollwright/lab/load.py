"""A bounded HTTP load generator: proves a deploy drops no request, by counting every answer.

Bounded in both count and time (it stops at whichever comes first, and on `stop()`), and it only
ever talks to the address it is given (the lab's load balancer).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

MAX_REQUESTS = 50_000
MAX_SECONDS = 600.0


@dataclass
class LoadResult:
    """Every request's outcome: status codes, errors and the app versions that answered."""

    sent: int = 0
    ok: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return self.sent - self.ok

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        problems = dict(self.errors) | {f"HTTP {code}": n for code, n in self.statuses.items() if code != 200}
        return (f"{self.sent} requests in {self.seconds:.1f}s ({rate:.0f}/s), {self.failed} failed"
                f"{' ' + str(problems) if problems else ''}, versions {dict(self.versions)}")


class Load:
    """`with Load(host, port): deploy()` sends GET requests from `workers` threads until the block ends."""

    def __init__(self, host: str, port: int = 80, path: str = "/", *, rate: float = 80.0, workers: int = 4,
                 max_requests: int = MAX_REQUESTS, max_seconds: float = MAX_SECONDS, timeout: float = 10.0) -> None:
        self.host, self.port, self.path = host, port, path
        self.interval = 1.0 / rate  # requests are spread evenly: the deploy, not the load, must be measured
        self.workers = workers
        self.max_requests = min(max_requests, MAX_REQUESTS)
        self.max_seconds = min(max_seconds, MAX_SECONDS)
        self.timeout = timeout
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def start(self) -> Load:
        self._started = time.monotonic()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _claim(self) -> bool:
        """Take the next request slot (paced to `rate`); False once the count or time is spent, or on stop()."""
        with self._lock:
            if self._stop.is_set() or self.result.sent >= self.max_requests:
                return False
            due = self._started + self.result.sent * self.interval
            if due - self._started > self.max_seconds:
                return False
            self.result.sent += 1
        wait = due - time.monotonic()
        if wait > 0 and self._stop.wait(wait):
            with self._lock:
                self.result.sent -= 1  # stopped before this slot came: it was never sent
            return False
        return True

    def _work(self) -> None:
        while self._claim():
            status, version, error = self._one()
            with self._lock:
                if error:
                    self.result.errors[error] += 1
                else:
                    self.result.statuses[status] += 1
                    self.result.ok += status == 200
                    self.result.versions[version] += 1

    def _one(self) -> tuple[int, str, str]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("GET", self.path, headers={"Connection": "close"})
            response = connection.getresponse()
            response.read()
            return response.status, response.getheader("X-App-Version") or "", ""
        except (OSError, http.client.HTTPException) as exc:
            return 0, "", type(exc).__name__
        finally:
            connection.close()
