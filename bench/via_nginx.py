"""Phase 5: the same figures through nginx, configured as the project deploys it.

The config is rendered from ``deploy/nginx.conf`` by ``deploy/render-nginx-conf.py``
(the same renderer ``scripts/stack.sh`` uses) into a temporary directory, on a free
port, with the app (started with ``--xheaders``, as behind nginx in production) as
its upstream; a second instance fronts the hello world the same way. The nginx binary
comes from ``scripts/ensure-nginx.sh --print`` (which installs it when missing).
Direct hello world, hello world through nginx, ``/whoami`` and ``/home`` through nginx
alternate over the rounds.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.context import Context, Summary
from bench.procs import REPO_ROOT, Server
from bench.session_cost import alternate
from bench.wrk import Load
from tests.support import nginx as nginx_tools


@dataclass
class ViaNginx:
    hello_direct: Summary
    hello: Summary
    whoami: Summary
    home: Summary
    nginx: str

    def ratio(self, summary: Summary, reference: Summary | None = None) -> float:
        return summary.ratio_to(reference or self.hello_direct)


def find_nginx() -> str:
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "ensure-nginx.sh"), "--print"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    return out.stdout.strip().splitlines()[-1]


def start_nginx(ctx: Context, nginx: str, upstream: Server, name: str) -> Server:
    prefix = Path(tempfile.mkdtemp(prefix=f"bench-nginx-{name}-", dir=ctx.log_dir))
    port = procs.free_port()
    conf = nginx_tools.render_config(prefix, listen_port=port, upstream_ports=[upstream.port])
    subprocess.run([*nginx_tools.command(nginx, prefix, conf), "-t", "-q"], check=True)
    # The health check location proxies /healthz: the hello world answers 404 there,
    # so wait for the app-fronting instance only.
    server = procs.start_nginx(
        nginx,
        conf,
        prefix,
        port,
        prefix / "nginx.out",
        ready_path="/healthz" if name == "app" else "/",
    )
    server.name = f"nginx ({name})"
    return ctx.started(server)


def run(ctx: Context, hello: Server, nginx: str) -> ViaNginx:
    app = ctx.start_app("--xheaders", name="app-xheaders")
    front_app = start_nginx(ctx, nginx, app, "app")
    front_hello = start_nginx(ctx, nginx, hello, "hello")
    headers = ctx.user_headers()
    try:
        plan: list[tuple[str, Server | list[Server], Load]] = [
            ("hello world (direct)", hello, Load("/", headers)),
            ("hello world via nginx", [front_hello, hello], Load("/", headers)),
            ("GET /whoami via nginx", [front_app, app], Load("/whoami", headers)),
            ("GET /home (JSON) via nginx", [front_app, app], Load("/home", headers)),
        ]
        direct, via_hello, whoami, home = alternate(ctx, plan, ctx.opts.connections)
    finally:
        for server in (front_app, front_hello, app):
            ctx.stop(server)
    return ViaNginx(direct, via_hello, whoami, home, nginx)
