"""Identifiers for our own rows and objects: ULIDs in lower case.

A ULID is 48 bits of milliseconds since the epoch and 80 random bits, written
as 26 Crockford base-32 characters, so ``ORDER BY id`` is ``ORDER BY created``
to the millisecond. Lower case because they appear in URLs (``/m/01j...``).
Generated here rather than with a library: it is a dozen lines, and two ids
are minted for every inbound activity, where a library's general-purpose
object costs more than the rest of the id.
"""

import os
import re
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_ULID = re.compile(r"^[0-7][0-9a-hjkmnp-tv-z]{25}$")


def new_id() -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_ids(n: int) -> list[str]:
    """``n`` ids in ascending order: rows written together (a message's files)
    come back in the order they were given, even within one millisecond."""
    return sorted(new_id() for _ in range(n))


def is_id(value: str) -> bool:
    return bool(_ULID.match(value))


def floor_id(seconds: float) -> str:
    """The smallest id minted at ``seconds`` since the epoch: ``id > floor_id(t)`` is "made after t"."""
    return floor_id_ms(int(seconds * 1000))


def floor_id_ms(ms: int) -> str:
    """The smallest id minted in millisecond ``ms`` since the epoch."""
    value = ms << 80
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
