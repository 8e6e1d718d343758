"""Identifiers for our own rows and objects: sortable ULIDs in lower case.

Lower case because they appear in URLs (``/m/01j...``); ULIDs sort by creation
time, so ``ORDER BY id`` is ``ORDER BY created`` to the millisecond.
"""

from ulid import ULID


def new_id() -> str:
    return str(ULID()).lower()


def is_id(value: str) -> bool:
    if len(value) != 26:
        return False
    try:
        ULID.from_str(value.upper())
    except ValueError:
        return False
    return True
