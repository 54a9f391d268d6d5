"""What counts as the shared store (Redis) failing, for the outage policy (`StoreFailure`)."""

from __future__ import annotations

from collections.abc import Callable

# (component: "limits" or "budget", stage: "acquire", "reserve", "settle")
StoreListener = Callable[[str, str], None]


def is_store_error(error: BaseException) -> bool:
    """True for a Redis client error (connection refused or reset, timeout, a server that is loading or read-only)
    and for `limits`' own wrapper of one; False for anything else, which is not ours to absorb."""
    import redis.exceptions

    if isinstance(error, redis.exceptions.RedisError | ConnectionError | TimeoutError):
        return True
    try:
        from limits.errors import StorageError
    except ImportError:  # pragma: no cover - limits is part of the extra
        return False
    return isinstance(error, StorageError)
