"""Prefixed, time-ordered ids (``int_``, ``evt_``, ``sync_``, ``tnt_``): a ULID body in lower case."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id", "new_ids"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
"""The two characters of every 10-bit value."""
_RANDOM_BYTES = 10  # 80 bits


_POOL_BYTES = 4096


class _Entropy(threading.local):
    """This thread's stock of random bytes from ``os.urandom``."""

    data = b""
    used = 0


_entropy = _Entropy()


def _random_bytes(size: int) -> bytes:
    """``size`` bytes of ``os.urandom``, drawn a few kilobytes at a time.

    Why: ``os.urandom`` lets go of the GIL for its system call, and taking it back on a busy server cost
    the publish writer more time than making the ids: one call per id, two ids per event.
    """
    stock = _entropy
    if stock.used + size > len(stock.data):
        stock.data, stock.used = os.urandom(max(_POOL_BYTES, size)), 0
    start = stock.used
    stock.used += size
    return stock.data[start : start + size]


def _fresh_entropy() -> None:
    """A forked child draws its own bytes: sharing the parent's stock would repeat its ids."""
    global _entropy
    _entropy = _Entropy()


os.register_at_fork(after_in_child=_fresh_entropy)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def _random_parts(count: int) -> list[str]:
    """``count`` strings of 80 random bits each, 16 characters, ten bits (two characters) at a time.

    Why: ids are made two per synced record; encoding an 80-bit integer digit by digit in Python cost more
    than the rest of building the record's rows.
    """
    pairs = _PAIRS
    data = _random_bytes(_RANDOM_BYTES * count)
    parts = []
    for start in range(0, len(data), _RANDOM_BYTES):
        value = int.from_bytes(data[start : start + _RANDOM_BYTES], "big")
        parts.append(
            pairs[value >> 70]
            + pairs[(value >> 60) & 1023]
            + pairs[(value >> 50) & 1023]
            + pairs[(value >> 40) & 1023]
            + pairs[(value >> 30) & 1023]
            + pairs[(value >> 20) & 1023]
            + pairs[(value >> 10) & 1023]
            + pairs[value & 1023]
        )
    return parts


_last_time: tuple[int, str] = (-1, "")
"""The last millisecond encoded, and its text: ids made in the same millisecond share it."""


def _time_text(ms: int) -> str:
    global _last_time
    last = _last_time
    if last[0] != ms:
        last = _last_time = (ms, _encode(ms, 10))
    return last[1]


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """A new id ``<prefix>_<26 chars>``: 48 bits of milliseconds then 80 random bits, so ids sort by time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}_{_time_text(ms)}{_random_parts(1)[0]}"


def new_ids(prefix: str, count: int, *, now_ms: int | None = None) -> list[str]:
    """``count`` new ids as :func:`new_id` makes them, all in the same millisecond (cheaper in bulk)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    head = f"{prefix}_{_time_text(ms)}"
    return [head + tail for tail in _random_parts(count)] if count > 0 else []
