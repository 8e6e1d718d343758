"""Process wiring: build the Hub, attach adapters, serve HTTP, run workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from hub import web as pages
from hub.config import Config
from hub.context import Hub
from hub.db import migrate

log = logging.getLogger(__name__)


class PathOnlyAccessLogger(AbstractAccessLogger):
    """The access log without query strings: clients may send a token (``access_token``) or OAuth
    parameters there, and secrets are never logged."""

    def log(self, request, response, time: float) -> None:
        self.logger.info('%s "%s %s" %s %s %.3fs', request.remote, request.method, request.path, response.status,
                         response.body_length, time)


def setup_logging(cfg: Config) -> None:
    logging.basicConfig(
        level=getattr(logging, cfg.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiohttp's access log is chatty and costs throughput; opt in.
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if cfg.access_log else logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


async def open_hub(cfg: Config, *, federation: bool = True, run_migrations: bool = True) -> Hub:
    """A ready Hub: migrated database and, unless told otherwise, the ActivityPub adapter."""
    hub = Hub.create(cfg)
    from hub import notify
    from hub.inbox import webhooks

    webhooks.register(hub)
    notify.register(hub)
    from hub import links

    links.register(hub)
    from hub.mastodon import push

    push.register(hub)
    from hub import consent, export

    consent.register(hub)
    export.register(hub)
    try:
        if run_migrations:
            await migrate(hub.db.engine)
        if federation:
            from hub.federation import Federation

            await Federation.attach(hub)
        from hub import bridges

        await bridges.attach(hub).ensure_bridge_rows()
    except BaseException:
        await hub.close()
        raise
    return hub


def create_app(hub: Hub) -> web.Application:
    from hub.federation import routes as ap_routes

    app = web.Application(client_max_size=hub.cfg.max_inbox_body + 1024)
    pages.setup(app, hub)
    from hub import api
    from hub.bridges import api as bridge_api

    bridge_api.setup(app, hub)  # before the API's catch-all
    from hub import media

    media.setup(app, hub)
    api.setup(app, hub)
    from hub import mastodon

    mastodon.setup(app, hub)
    from hub.consent import federation as consent_fed

    consent_fed.setup(app)
    from hub import export

    export.setup(app, hub)
    if hub.federation is not None:
        ap_routes.setup(app, hub.federation)
    return app


async def serve(cfg: Config, *, stop: asyncio.Event | None = None) -> None:
    """``roundtable serve``: the web server and, by default, the job workers."""
    hub = await open_hub(cfg)
    app = create_app(hub)
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access") if cfg.access_log else None,
                           access_log_class=PathOnlyAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, cfg.listen_host, cfg.listen_port, reuse_address=True, backlog=1024)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    worker = None
    try:
        await site.start()
        log.info("Roundtable serving %s on %s (dev=%s, workers=%s)", cfg.base_url, cfg.listen, cfg.dev, cfg.workers)
        print(f"Roundtable {cfg.base_url} listening on {cfg.listen}", flush=True)
        if cfg.workers:
            worker = asyncio.create_task(hub.make_runner().run())
        await hub.bridges.start()
        await stop.wait()
    finally:
        await hub.bridges.stop()
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await runner.cleanup()
        await hub.close()


async def work(cfg: Config, *, stop: asyncio.Event | None = None) -> None:
    """``roundtable worker``: only the job workers (scale-out beside ``serve``)."""
    hub = await open_hub(cfg)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(hub.make_runner().run())
    print("Roundtable worker running", flush=True)
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await hub.close()
