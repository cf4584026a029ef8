"""GET /healthz (alive, and the database answers) and GET /metrics (Prometheus text), as aiohttp routes for
the webhook and WeCom servers, and the small listener polling deployments can switch on
(`[app] metrics_listen`, off by default)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot.metrics import Metrics

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

log = logging.getLogger("bangfu.metrics")
HEALTH_TIMEOUT = 3.0


def routes(metrics: Metrics, engine: Callable[[], AsyncEngine | None],
           sessionmaker: Callable[[], async_sessionmaker[AsyncSession] | None]) -> list[web.RouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        eng = engine()
        try:
            if eng is None:
                raise RuntimeError("not started")

            async def ping() -> None:
                async with eng.connect() as conn:
                    await conn.execute(text("SELECT 1"))

            await asyncio.wait_for(ping(), HEALTH_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - any failure is "unhealthy", named in one word
            return web.json_response({"status": "error", "database": type(e).__name__}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})

    async def metrics_view(request: web.Request) -> web.Response:
        sm = sessionmaker()
        if sm is not None:
            try:
                await asyncio.wait_for(metrics.refresh_outbox(sm), HEALTH_TIMEOUT)
            except Exception:  # noqa: BLE001 - the other figures are still worth serving
                log.warning("outbox figures unavailable for /metrics", exc_info=True)
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get("/healthz", healthz), web.get("/metrics", metrics_view)]


class OpsServer:
    """The small listener for deployments without a webhook or WeCom server of their own."""

    def __init__(self, route_defs: list[web.RouteDef], host: str, port: int) -> None:
        self._routes = route_defs
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int | None:
        if self._runner is None or not self._runner.addresses:
            return None
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(self._routes)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("health and metrics on http://%s:%s/healthz and /metrics", self._host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
