#!/usr/bin/env python3
"""Render deploy/nginx.conf (a template) into a config nginx can run.

Standard library only, so it runs with any Python 3.8+ on a server as well as with the
project's virtual environment. Examples::

    # a local instance: everything it writes lives under var/nginx
    deploy/render-nginx-conf.py --prefix var/nginx --listen 127.0.0.1:8080 \\
        --upstream 127.0.0.1:8888 --output var/nginx/nginx.conf
    nginx -e stderr -p var/nginx -c "$PWD/var/nginx/nginx.conf"

    # production: TLS on 443, port 80 redirects, system paths
    deploy/render-nginx-conf.py --listen 80 --tls-listen 443 --https-redirect \\
        --tls-cert /etc/letsencrypt/live/app.example.com/fullchain.pem \\
        --tls-key /etc/letsencrypt/live/app.example.com/privkey.pem \\
        --server-name app.example.com --user www-data --static-root /srv/app/static \\
        --pid-file /run/nginx-app.pid --log-dir /var/log/nginx-app \\
        --temp-dir /var/cache/nginx-app --output /etc/nginx-app/nginx.conf

Placeholders are ``@NAME@``; template lines starting with ``#@SECTION@`` are kept
(marker removed) when the section is on, dropped otherwise. A placeholder or marker
left over after rendering is an error, so the template and this script cannot drift.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
TEMPLATE = HERE / "nginx.conf"

# Characters that would need quoting in nginx syntax (or start a variable): refused.
_UNSAFE = re.compile(r"[\s;{}\"'$#\\]")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
_LISTEN = re.compile(r"^((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?([0-9]{1,5})$")
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def _app_max_body() -> str:
    """The app's body limit, from limits.py (standard library only, loaded by path)."""
    spec = importlib.util.spec_from_file_location("limits", REPO_ROOT / "limits.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(int(module.MAX_BODY_BYTES))


def _safe(value: str, what: str) -> str:
    if not value or _UNSAFE.search(value):
        raise SystemExit(f"render-nginx-conf: unusable {what}: {value!r}")
    return value


def _listen(value: str, what: str) -> str:
    match = _LISTEN.match(value)
    if not match or not 0 < int(match.group(3)) < 65536:
        raise SystemExit(f"render-nginx-conf: {what} must be PORT or HOST:PORT, not {value!r}")
    return value


def _upstream(value: str) -> str:
    if value.startswith("unix:"):
        return _safe(value, "upstream socket")
    match = _HOST_PORT.match(value)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise SystemExit(
            f"render-nginx-conf: upstream must be HOST:PORT or unix:PATH, not {value!r}"
        )
    return value


def _abs(path: str) -> str:
    return str(Path(path).expanduser().resolve())


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show a default only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Render deploy/nginx.conf for a local or production nginx.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--template", default=str(TEMPLATE), help="template to render")
    parser.add_argument("--output", "-o", default="-", help="file to write ('-': stdout)")
    parser.add_argument(
        "--prefix",
        default=str(REPO_ROOT / "var" / "nginx"),
        help="runtime directory; pid file, logs/ and temp/ default to it",
    )
    parser.add_argument("--pid-file", help="default: PREFIX/nginx.pid")
    parser.add_argument("--log-dir", help="default: PREFIX/logs")
    parser.add_argument("--temp-dir", help="default: PREFIX/temp")
    parser.add_argument(
        "--no-mkdirs", action="store_true", help="do not create the log and temp directories"
    )
    parser.add_argument("--listen", default="127.0.0.1:8080", help="plain-HTTP listen address")
    parser.add_argument(
        "--upstream",
        action="append",
        help="app address HOST:PORT or unix:PATH; repeat for several instances or hosts "
        "(default 127.0.0.1:8888)",
    )
    parser.add_argument(
        "--max-fails",
        type=int,
        default=2,
        help="failures within --fail-timeout after which an upstream server is left out",
    )
    parser.add_argument(
        "--fail-timeout",
        default="10s",
        help="window for --max-fails, and how long a failed server is then left out",
    )
    parser.add_argument(
        "--static-root", default=str(REPO_ROOT / "static"), help="directory served at /static/"
    )
    parser.add_argument("--server-name", default="_", help="server_name ('_': any host)")
    parser.add_argument("--worker-processes", default="auto", help="nginx worker processes")
    parser.add_argument(
        "--user",
        help="'USER [GROUP]' of the workers when the master runs as root (nginx's default: nobody)",
    )
    parser.add_argument("--tls-listen", help="HTTPS listen address, e.g. 443 or 127.0.0.1:8443")
    parser.add_argument("--tls-cert", help="certificate chain (PEM)")
    parser.add_argument("--tls-key", help="private key (PEM)")
    parser.add_argument(
        "--https-redirect",
        action="store_true",
        help="the plain-HTTP listener only redirects to HTTPS (needs --tls-listen)",
    )
    return parser.parse_args(argv)


def render(args: argparse.Namespace) -> tuple[str, list[Path]]:
    """Return the rendered config and the directories it expects to exist."""
    prefix = Path(_abs(args.prefix))
    pid_file = _abs(args.pid_file) if args.pid_file else str(prefix / "nginx.pid")
    log_dir = _abs(args.log_dir) if args.log_dir else str(prefix / "logs")
    temp_dir = _abs(args.temp_dir) if args.temp_dir else str(prefix / "temp")
    static_root = _abs(args.static_root)

    tls = bool(args.tls_listen or args.tls_cert or args.tls_key)
    if tls and not (args.tls_listen and args.tls_cert and args.tls_key):
        raise SystemExit("render-nginx-conf: TLS needs --tls-listen, --tls-cert and --tls-key")
    if args.https_redirect and not tls:
        raise SystemExit("render-nginx-conf: --https-redirect needs TLS options")
    upstreams = args.upstream or ["127.0.0.1:8888"]
    if args.max_fails < 1:
        raise SystemExit("render-nginx-conf: --max-fails must be 1 or more")
    max_fails = str(args.max_fails)
    if not re.fullmatch(r"[1-9][0-9]*(ms|s)?", args.fail_timeout):
        raise SystemExit(
            f"render-nginx-conf: --fail-timeout must be like 10s, not {args.fail_timeout!r}"
        )
    fail_timeout = args.fail_timeout

    values = {
        "USER": " ".join(_safe(u, "user") for u in args.user.split()) if args.user else "",
        "WORKER_PROCESSES": _safe(args.worker_processes, "worker count"),
        "PID_FILE": _safe(pid_file, "pid file"),
        "LOG_DIR": _safe(log_dir, "log directory"),
        "TEMP_DIR": _safe(temp_dir, "temp directory"),
        "STATIC_ROOT": _safe(static_root, "static root"),
        "SERVER_NAME": " ".join(_safe(n, "server name") for n in args.server_name.split()),
        "LISTEN": _listen(args.listen, "--listen"),
        "UPSTREAM_SERVERS": "\n".join(
            f"        server {_upstream(u)} max_fails={max_fails} fail_timeout={fail_timeout};"
            for u in upstreams
        ),
        "MAX_FAILS": max_fails,
        "FAIL_TIMEOUT": fail_timeout,
        "TLS_LISTEN": _listen(args.tls_listen, "--tls-listen") if tls else "",
        "TLS_CERT": _safe(_abs(args.tls_cert), "certificate") if tls else "",
        "TLS_KEY": _safe(_abs(args.tls_key), "key") if tls else "",
        "HTTPS_PORT_SUFFIX": "",
        "MAX_BODY": _app_max_body(),
    }
    if tls:
        port = values["TLS_LISTEN"].rsplit(":", 1)[-1]
        values["HTTPS_PORT_SUFFIX"] = "" if port == "443" else f":{port}"
    sections = {
        "USER": bool(args.user),
        "HTTP": not args.https_redirect,
        "TLS": tls,
        "REDIRECT": args.https_redirect,
    }

    lines = Path(args.template).read_text().splitlines()
    # The template's leading comment explains the template; the output gets its own.
    while lines and (lines[0].startswith("#") and not lines[0].startswith("#@")):
        lines.pop(0)
    out_lines = [
        f"# Rendered from {Path(args.template).name} by render-nginx-conf.py: edit the",
        "# template (or the options) and render again rather than editing this file.",
    ]
    for line in lines:
        marker = re.match(r"^#@([A-Z]+)@", line)
        if marker:
            name = marker.group(1)
            if name not in sections:
                raise SystemExit(f"render-nginx-conf: unknown section marker {name!r}")
            if not sections[name]:
                continue
            line = line[marker.end() :]
        out_lines.append(line)
    text = "\n".join(out_lines) + "\n"
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    leftover = sorted(set(_PLACEHOLDER.findall(text)))
    if leftover:
        raise SystemExit(f"render-nginx-conf: unknown placeholders in template: {leftover}")
    return text, [Path(log_dir), Path(temp_dir), Path(pid_file).parent]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    text, dirs = render(args)
    if not args.no_mkdirs:
        for directory in dirs:
            directory.mkdir(parents=True, exist_ok=True)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
