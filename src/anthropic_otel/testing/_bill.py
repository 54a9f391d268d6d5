"""The knobs of the fake usage and cost API (`_billing.py`), kept on the server's state."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal


@dataclass
class Billing:
    """What the fake bill does; change the fields at any time (tests set them between calls)."""

    admin_key: str | None = None  # when set, only this x-api-key may read the report (else 401)
    reject_key: bool = False  # answer 401 authentication_error to any key (an expired key)
    price_factor: dict[str, Decimal] = field(default_factory=dict)  # model -> factor on its billed price
    page_size: int | None = None  # rows per page, overriding the request's `limit`
    rate_limit_next: int = 0  # answer this many of the next report requests with 429 and retry-after
    server_error_next: int = 0  # then this many with 500 api_error
    refreshed_lag: timedelta = timedelta(0)  # data_refreshed_at = now - lag (buckets ending later are not final)
    requests: list[str] = field(default_factory=list)  # the path of every report request, in order
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take_failure(self) -> int | None:
        """The status to fail the next report request with (429, then 500), or None to answer it."""
        with self._lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return 429
            if self.server_error_next > 0:
                self.server_error_next -= 1
                return 500
            return None
