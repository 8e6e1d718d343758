"""Shared fixtures: a real hub on a temporary SQLite database, served on a
free loopback port, and a FakeRemote peer (see tests/helpers.py)."""

from __future__ import annotations

import os

# argon2id at its smallest cost in the suite (hub/passwords.py), set before hub is imported
os.environ["ROUNDTABLE_TEST_FAST_HASHING"] = "1"

import aiohttp  # noqa: E402
import pytest  # noqa: E402
from aiohttp import web  # noqa: E402

import hub.passwords  # noqa: E402, F401  (made now, whatever later fixtures do to the environment)
from hub.app import create_app, open_hub  # noqa: E402
from tests.helpers import FakeRemote, make_config  # noqa: E402


@pytest.fixture
async def hub(tmp_path):
    cfg = make_config(tmp_path)
    h = await open_hub(cfg)
    h.make_runner()
    yield h
    await h.close()


@pytest.fixture
async def served_hub(hub):
    """The hub answering HTTP on its configured loopback port."""
    runner = web.AppRunner(create_app(hub))
    await runner.setup()
    await web.TCPSite(runner, hub.cfg.listen_host, hub.cfg.listen_port).start()
    yield hub
    await runner.cleanup()


@pytest.fixture
async def remote():
    r = await FakeRemote().start()
    yield r
    await r.stop()


@pytest.fixture
async def remote2():
    """A second peer, on another origin."""
    r = await FakeRemote().start()
    yield r
    await r.stop()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s
