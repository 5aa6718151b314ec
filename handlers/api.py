"""Small JSON endpoints for scripts and load balancers: ``/whoami``, ``/healthz``."""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

from handlers.base import BaseHandler
from storage.errors import StorageUnavailable


class WhoAmIHandler(BaseHandler):
    """The signed-in user from the session alone: the cheapest signed-in request."""

    json_only = True

    def get(self) -> None:
        user = self.require_user()
        self.write_json(
            False,
            {
                "user_id": user["user_id"],
                "user_name": user["user_name"],
                "served_by": self.res.served_by,
                "remote_ip": self.request.remote_ip,
                "protocol": self.request.protocol,
            },
        )


class HealthHandler(BaseHandler):
    """200 when Redis and MariaDB both answer, else 503 naming what is down."""

    json_only = True
    load_session_first = False

    async def get(self) -> None:
        redis_ok, mysql_ok = await asyncio.gather(self._redis(), self._mysql())
        state = {
            "redis": "ok" if redis_ok else "down",
            "mysql": "ok" if mysql_ok else "down",
            "served_by": self.res.served_by,
        }
        if not (redis_ok and mysql_ok):
            self.set_status(503)
            self.set_header("Retry-After", "5")
        self.write_json(not (redis_ok and mysql_ok), state)

    async def _redis(self) -> bool:
        try:
            return bool(await self.res.redis.ping())
        except RedisError:
            return False

    async def _mysql(self) -> bool:
        try:
            await self.res.db.ping()
        except StorageUnavailable:
            return False
        return True
