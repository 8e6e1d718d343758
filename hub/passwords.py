"""The one argon2id hasher of login passwords.

Its cost is argon2-cffi's default (RFC 9106's second recommended setting,
64 MiB, 3 passes). The test suite alone sets ``ROUNDTABLE_TEST_FAST_HASHING=1``
for the smallest cost, as Rails apps lower Devise's stretches in tests: the
same algorithm and code run, a thousand accounts are made faster. A hash keeps
its own parameters, so verifying never depends on this setting.
"""

from __future__ import annotations

import os

from argon2 import PasswordHasher

if os.environ.get("ROUNDTABLE_TEST_FAST_HASHING") == "1":
    HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
else:
    HASHER = PasswordHasher()
