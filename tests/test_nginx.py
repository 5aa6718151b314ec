"""The app behind real nginx, as deployed: ``deploy/nginx.conf`` in front of
``server.py --processes=2 --xheaders``.

Shown here, each with real processes (nginx with the rendered config on free ports under
``tmp_path``, with an HTTPS listener and a self-signed certificate made with openssl):

* a user signs in through nginx and every following request, on new connections, is
  signed in while ``X-Served-By`` names both worker processes;
* the app sees the client's address and scheme from the headers nginx sets, and nginx
  overwrites the ones a client sends; the session cookie is ``Secure`` over HTTPS only;
* static files come from nginx with long cache headers, never from the app;
* nginx refuses bodies over 64 KB before they reach the app;
* ``scripts/stack.sh`` runs app and nginx together and stops both on SIGTERM.

nginx must be installed (``scripts/ensure-nginx.sh``, run by ``make test``); without it
these tests fail rather than skip.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import http
from tests.support import nginx as nginx_tools
from tests.support.http import Reply
from tests.support.procs import established_connections_to, worker_pids
from tests.support.server_process import REPO_ROOT, ServerProcess, free_port

STATIC_ROOT = nginx_tools.STATIC_ROOT
LONG_CACHE = "public, max-age=31536000, immutable"
# A client address other than 127.0.0.1: nginx sees the client come from here, while the
# app sees every connection come from nginx at 127.0.0.1 (all of 127/8 is loopback).
CLIENT_IP = "127.0.0.2"
SPOOFED_IP = "203.0.113.9"


# --- finding the tools ------------------------------------------------------------------


def _nginx_binary() -> str:
    found = nginx_tools.nginx_binary()
    if found is None:
        pytest.fail("nginx is not installed: run scripts/ensure-nginx.sh (make test does)")
    return found


def _openssl_binary() -> str:
    found = shutil.which("openssl")
    if not found:
        pytest.fail("openssl is needed to make the test certificate (apt-get install openssl)")
    return found


# --- the tests' HTTP client (a new connection per request), with a sign-up -----------------


class Client(http.Client):
    def sign_up(self) -> tuple[Reply, Reply]:
        """Register a new user (on a separate client), then sign in on this one.

        Returns the registration and the sign-in replies.
        """
        email = f"nginx-{secrets.token_hex(6)}@example.com"
        password = "correct horse battery"
        newcomer = Client(self.base_url, ca_file=self.ca_file, source_ip=self.source_ip)
        assert newcomer.request("GET", "/").status == 200
        assert "_xsrf" in newcomer.cookies
        registered = newcomer.request(
            "POST",
            "/register",
            form={"user_name": "Proxy Tester", "user_email": email, "user_password": password},
        )
        assert registered.status == 201, registered.body
        assert "sid" in registered.cookies, registered.headers

        first = self.request("GET", "/")
        assert first.status == 200, first.body
        assert "_xsrf" in self.cookies, first.headers
        signed_in = self.request(
            "POST", "/login", form={"user_email": email, "user_password": password}
        )
        assert signed_in.status == 200, signed_in.body
        assert "sid" in signed_in.cookies, signed_in.headers
        return registered, signed_in


def _free_ports(count: int) -> list[int]:
    """``count`` different free ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _served_by_pid(reply: Reply) -> int:
    served_by = reply.header("X-Served-By")
    assert served_by, f"no X-Served-By on a response from the app: {reply.headers}"
    return int(served_by.rsplit(":", 1)[-1])


# --- nginx --------------------------------------------------------------------------------


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    prefix: Path
    conf: Path
    http_url: str
    https_url: str
    ca_file: Path
    log_path: Path

    def log(self) -> str:
        parts = [self.log_path.read_text(errors="replace")]
        error_log = self.prefix / "logs" / "error.log"
        if error_log.exists():
            parts.append(error_log.read_text(errors="replace"))
        return "\n".join(parts)

    def stop(self) -> int:
        """Graceful stop (SIGQUIT); the whole process group is gone afterwards."""
        return nginx_tools.stop(self.proc)


def _make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            _openssl_binary(),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _wait_for(
    url: str, proc: subprocess.Popen[bytes], log: Callable[[], str], ca_file: Path | None = None
) -> None:
    client = Client(url, ca_file=ca_file)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode} before {url} answered:\n{log()}")
        try:
            if client.request("GET", "/healthz").status == 200:
                return
        except httpx.TransportError:  # not listening yet
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer within 20 s:\n{log()}")


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[Callable[[list[int]], Nginx]]:
    """``start_nginx([app_port, ...])``: nginx on free ports in front of those ports."""
    nginx_bin = _nginx_binary()
    started: list[Nginx] = []

    def start(upstream_ports: list[int]) -> Nginx:
        prefix = tmp_path / f"nginx-{len(started)}"
        prefix.mkdir()
        cert, key = _make_certificate(prefix)
        http_port, https_port = _free_ports(2)
        conf = nginx_tools.render_config(
            prefix,
            listen_port=http_port,
            upstream_ports=upstream_ports,
            worker_processes=2,
            extra=["--tls-listen", f"127.0.0.1:{https_port}", "--tls-cert", str(cert),
                   "--tls-key", str(key)],
        )  # fmt: skip
        checked = subprocess.run(
            [*nginx_tools.command(nginx_bin, prefix, conf), "-t"], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr
        log_path = prefix / "nginx.out"
        proc = nginx_tools.start(nginx_bin, prefix, conf, log_path)
        server = Nginx(
            proc,
            prefix,
            conf,
            f"http://127.0.0.1:{http_port}",
            f"https://127.0.0.1:{https_port}",
            cert,
            log_path,
        )
        started.append(server)
        _wait_for(server.http_url, proc, server.log)
        _wait_for(server.https_url, proc, server.log, ca_file=cert)
        return server

    yield start
    for server in started:
        server.stop()
        assert server.proc.returncode == 0, f"nginx did not stop cleanly:\n{server.log()}"


@pytest.fixture
def stack(
    spawn_server: Callable[..., ServerProcess], start_nginx: Callable[[list[int]], Nginx]
) -> tuple[ServerProcess, Nginx]:
    """``server.py --processes=2 --xheaders`` behind nginx."""
    app = spawn_server(processes=2, args=["--xheaders"])
    return app, start_nginx([app.port])


# --- the tests ----------------------------------------------------------------------------


def test_one_sign_in_through_nginx_is_served_by_both_workers(
    stack: tuple[ServerProcess, Nginx],
) -> None:
    app, nginx = stack
    workers = worker_pids(app.pid)
    assert len(workers) == 2, f"expected 2 workers under {app.pid}, found {workers}"

    user = Client(nginx.http_url)
    _, signed_in = user.sign_up()
    user_id = signed_in.json()["message"]["user_id"]  # type: ignore[index]

    # Concurrent requests, each on a new client connection: nginx needs several upstream
    # connections at once, and new connections spread over the workers. Every one of
    # them must be signed in as the same user.
    seen: set[int] = set()
    replies: list[Reply] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):  # 40 requests; more rounds only if one worker was never hit
            batch = list(pool.map(lambda _: user.request("GET", "/whoami"), range(40)))
            replies += batch
            seen |= {_served_by_pid(r) for r in batch}
            if seen == workers:
                break
    for reply in replies:
        assert reply.status == 200, reply.body
        body = reply.json()
        assert body["error"] is False
        message = body["message"]
        assert isinstance(message, dict)
        assert message["user_id"] == user_id
        assert message["served_by"] == reply.header("X-Served-By")
    assert seen == workers, f"served by {seen}, workers are {workers}"

    # The session counter stays exact across both workers: 30 concurrent visits of /home,
    # then one more, which must report 31.
    with ThreadPoolExecutor(max_workers=8) as pool:
        visits = list(pool.map(lambda _: user.request("GET", "/home"), range(30)))
    assert all(v.status == 200 for v in visits), [v.status for v in visits]
    assert {_served_by_pid(v) for v in visits} <= workers
    last = user.request("GET", "/home")
    assert last.status == 200
    assert last.json()["message"]["views"] == 31  # type: ignore[index]

    # nginx keeps idle connections to the app open for the next requests (keep-alive to
    # the upstream: HTTP/1.1 and an empty Connection header); without it every proxied
    # request would open and close its own connection and none would stay established.
    assert established_connections_to(app.port) >= 1

    # Without the cookie the same request is refused: the checks above mean something.
    anonymous = Client(nginx.http_url).request("GET", "/whoami")
    assert anonymous.status == 401
    assert anonymous.json()["error"] is True


def test_app_sees_client_address_and_scheme_from_nginx_headers(
    stack: tuple[ServerProcess, Nginx],
) -> None:
    app, nginx = stack
    spoofed = {
        "X-Real-IP": SPOOFED_IP,
        "X-Forwarded-For": SPOOFED_IP,
        "X-Forwarded-Proto": "https",
        "X-Scheme": "https",
    }

    # Plain HTTP, from 127.0.0.2: the app reports that address (nginx connects to it
    # from 127.0.0.1, so only X-Real-IP can have told it) and scheme http, whatever the
    # client claimed in its own headers.
    plain = Client(nginx.http_url, source_ip=CLIENT_IP)
    _, signed_in = plain.sign_up()
    assert signed_in.cookies["sid"].get("httponly") is True
    assert not signed_in.cookies["sid"].get("secure"), signed_in.cookies["sid"]
    who = plain.request("GET", "/whoami", headers=spoofed)
    assert who.status == 200, who.body
    message = who.json()["message"]
    assert isinstance(message, dict)
    assert message["remote_ip"] == CLIENT_IP
    assert message["protocol"] == "http"

    # HTTPS: the app knows the client used HTTPS (X-Forwarded-Proto / X-Scheme from
    # nginx), so the session cookie is Secure; a client's "http" claim changes nothing.
    tls = Client(nginx.https_url, ca_file=nginx.ca_file, source_ip=CLIENT_IP)
    _, signed_in = tls.sign_up()
    sid = signed_in.cookies["sid"]
    assert sid.get("secure") is True, sid
    assert sid.get("httponly") is True
    assert str(sid.get("samesite")).lower() == "lax"
    assert signed_in.header("Strict-Transport-Security")
    who = tls.request(
        "GET",
        "/whoami",
        headers={"X-Forwarded-Proto": "http", "X-Scheme": "http", "X-Real-IP": SPOOFED_IP},
    )
    assert who.status == 200, who.body
    message = who.json()["message"]
    assert isinstance(message, dict)
    assert message["protocol"] == "https"
    assert message["remote_ip"] == CLIENT_IP
    assert plain.request("GET", "/whoami").header("Strict-Transport-Security") is None

    # The app itself trusts these headers (--xheaders): that is why it must listen on
    # loopback only, where nothing but nginx reaches it.
    direct = Client(app.url)
    direct.cookies = dict(plain.cookies)
    who = direct.request("GET", "/whoami", headers={"X-Real-IP": SPOOFED_IP})
    assert who.json()["message"]["remote_ip"] == SPOOFED_IP  # type: ignore[index]


def test_static_files_come_from_nginx_with_long_cache_headers(
    stack: tuple[ServerProcess, Nginx],
) -> None:
    app, nginx = stack
    client = Client(nginx.http_url)

    # The app's own page, through nginx: from the app (X-Served-By), never cached.
    page = client.request("GET", "/", json_reply=False, headers={"Accept-Encoding": "gzip"})
    assert page.status == 200
    assert page.header("X-Served-By")
    assert page.header("Cache-Control") == "no-store"
    assert page.header("Server") == "nginx"  # no version: server_tokens off
    assert page.header("Content-Encoding") == "gzip"
    html = gzip.decompress(page.body).decode()

    # Every static URL the page uses (Tornado's static_url, with ?v=<hash>) is answered
    # by nginx from disk: the file's bytes, a year of caching, no X-Served-By.
    urls = re.findall(r"""["'](/static/[^"'?]+\?v=[^"']+)["']""", html)
    assert urls, f"no versioned static URL in the page:\n{html}"
    for url in urls:
        reply = client.request("GET", url, json_reply=False)
        assert reply.status == 200, url
        on_disk = (STATIC_ROOT / urlsplit(url).path.removeprefix("/static/")).read_bytes()
        assert reply.body == on_disk
        assert reply.header("Cache-Control") == LONG_CACHE
        assert reply.header("X-Served-By") is None, reply.headers
        assert reply.header("ETag") and reply.header("Last-Modified")

    css = client.request(
        "GET", "/static/style.css?v=1", json_reply=False, headers={"Accept-Encoding": "gzip"}
    )
    assert css.header("Content-Encoding") == "gzip"
    assert gzip.decompress(css.body) == (STATIC_ROOT / "style.css").read_bytes()

    # Unversioned URLs must be revalidated; missing files and dot-files are nginx's 404.
    bare = client.request("GET", "/static/style.css", json_reply=False)
    assert bare.status == 200
    assert bare.header("Cache-Control") == "public, no-cache"
    assert bare.header("X-Served-By") is None
    for missing in ("/static/no-such-file.css?v=1", "/static/.hidden"):
        reply = client.request("GET", missing, json_reply=False)
        assert reply.status == 404, missing
        assert reply.header("X-Served-By") is None, missing
        assert reply.header("Cache-Control") != LONG_CACHE
    # A path that leaves /static/ is not a static file (nginx sends it on to the app,
    # which refuses it too).
    escape = client.request("GET", "/static/../server.py", json_reply=False)
    assert escape.status in (400, 403, 404)
    assert (REPO_ROOT / "server.py").read_bytes() not in escape.body

    # The app logged the page it served through nginx, and not one static request.
    deadline = time.monotonic() + 5
    page = '"method":"GET","route":"/","path":"/"'  # the app's JSON access line
    while page not in app.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert page in app.log(), app.log()
    assert '"path":"/static/style.css"' not in app.log(), app.log()


def test_nginx_refuses_bodies_over_64_kb(stack: tuple[ServerProcess, Nginx]) -> None:
    _, nginx = stack
    client = Client(nginx.http_url)
    client.request("GET", "/")
    too_big = client.request("POST", "/addStatus", form={"status": "x" * (65 * 1024)})
    assert too_big.status == 413
    assert too_big.header("X-Served-By") is None  # refused by nginx, never proxied
    # Just under the limit reaches the app, which answers for itself (signed out: 401).
    fits = client.request("POST", "/addStatus", form={"status": "x" * (60 * 1024)})
    assert fits.header("X-Served-By")
    assert fits.status == 401, fits.body


def test_no_access_log_records_a_querys_values(stack: tuple[ServerProcess, Nginx]) -> None:
    app, nginx = stack
    client = Client(nginx.http_url)
    secrets_sent = ("sid-secret-1", "password-secret-2", "token-secret-3")
    client.request("GET", f"/whoami?sid={secrets_sent[0]}&password={secrets_sent[1]}")
    client.request("GET", f"/nope?{secrets_sent[2]}", json_reply=False)
    access_log = nginx.prefix / "logs" / "access.log"

    def logged() -> str:
        text = access_log.read_text(errors="replace") if access_log.exists() else ""
        return text + app.log()

    deadline = time.monotonic() + 5  # nginx flushes its access log every second
    while logged().count("/nope") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    text = logged()
    assert '"GET /whoami HTTP/1.1" 401' in text and '"GET /nope HTTP/1.1" 404' in text, text
    for secret in secrets_sent:
        assert secret not in text


def test_stack_script_serves_through_nginx_and_stops_cleanly_on_sigterm(
    tmp_path: Path, mysql_url: str, redis_url: str, redis_prefix: str
) -> None:
    _nginx_binary()
    nginx_port, app_port = _free_ports(2)
    log_path = tmp_path / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env["VENV"] = str(Path(sys.executable).parent.parent)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [
                "bash",
                str(REPO_ROOT / "scripts" / "stack.sh"),
                "--port",
                str(nginx_port),
                "--app-port",
                str(app_port),
                "--processes",
                "2",
                "--var-dir",
                str(tmp_path / "var"),
                "--",
                f"--mysql_url={mysql_url}",
                f"--redis_url={redis_url}",
                f"--redis_prefix={redis_prefix}",
                "--cookie_secret=test-secret-" + "x" * 32,
                "--bcrypt_rounds=4",
                "--worker_threads=2",
                "--register_max_per_ip=0",  # the suite registers every account from 127.0.0.1
            ],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def log() -> str:
        return log_path.read_text(errors="replace")

    try:
        deadline = time.monotonic() + 60
        while "stack up" not in log():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"stack.sh did not come up:\n{log()}")
            time.sleep(0.1)
        pids = {int(p) for p in re.findall(r"pids? (\d+)", log())}
        pids |= {int(p) for p in re.findall(r"nginx pid (\d+)", log())}
        assert len(pids) == 2, log()  # one server.py parent, one nginx master

        user = Client(f"http://127.0.0.1:{nginx_port}")
        user.sign_up()
        who = user.request("GET", "/whoami")
        assert who.status == 200 and who.header("X-Served-By"), who.body
        static = user.request("GET", "/static/style.css?v=1", json_reply=False)
        assert static.header("Cache-Control") == LONG_CACHE

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM, log()
        for pid in pids:  # both process groups are empty: nothing left running
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for match in re.findall(r"pids? (\d+)|nginx pid (\d+)", log()):
            for pid in match:
                if pid:
                    nginx_tools.kill_group(int(pid))
