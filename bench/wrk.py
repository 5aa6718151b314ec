"""Run wrk (the C load generator) with a generated Lua script and read its figures.

Each wrk connection keeps one header set (one signed-in user's cookie) for the
whole run, as a browser keeps its user on its kept-alive connection: connection k
sends header set k (cycling when there are fewer sets than connections). wrk's Lua
state is per thread, with no hook that tells one connection from another, so every
run uses one thread per connection (``-tN -cN``); ``setup`` numbers the threads and
``init`` builds each thread's one request. Rotating every user over every
connection instead would have each session written by every worker, each save
evicting the other workers' cached copy: cache misses no browser causes.

The script may send a body (POST), may pause between requests (``delay_ms``: a
light probe instead of a closed-loop flood), and may count non-2xx answers itself
(wrk's own error count covers only status >= 400). Its ``done`` hook prints one JSON
line that :func:`run` parses: requests, duration, socket errors, non-2xx, and the
p50/p90/p99/max latency (µs).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

MARK = "BENCH_RESULT "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    socket_errors: int  # connect + read + write + timeout
    timeouts: int
    status_errors: int  # status >= 400, as wrk counts it
    non2xx: int | None  # counted by the script when asked, else None
    codes: dict[int, int]  # non-2xx answers by status (when counted)
    served: dict[str, int]  # answers by X-Served-By (host:pid), when counted
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    wrk_cpu_s: float  # user + system CPU of the wrk process

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


@dataclass(frozen=True)
class Load:
    """What one wrk run sends: connection k always sends header set k (and body k),
    cycling over the sets when there are more connections than sets."""

    path: str
    headers: list[dict[str, str]]
    method: str = "GET"
    bodies: list[str] | None = None  # one per header set (POST), or no body
    count_status: bool = False
    delay_ms: int = 0


def ensure_wrk() -> str:
    """The wrk executable; installed with apt-get when missing (Debian, as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is not installed: installing it with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install wrk")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    lines = (out.stdout + out.stderr).splitlines()
    return lines[0].split(" [")[0] if lines else "?"


def _lua_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def lua_script(load: Load) -> str:
    header_sets = ",\n".join(
        "  {" + ", ".join(f"[{_lua_str(k)}] = {_lua_str(v)}" for k, v in h.items()) + "}"
        for h in load.headers
    )
    bodies = ", ".join(_lua_str(b) for b in load.bodies or [])
    parts = [
        f"local header_sets = {{\n{header_sets}\n}}",
        f"local bodies = {{{bodies}}}",
        "local req",
        "local threads = {}",
        "non2xx = 0",
        "codes = {}",
        "served = {}",
        # setup runs in its own Lua state, before the threads start: number them.
        "function setup(thread)",
        "  table.insert(threads, thread)",
        "  thread:set('slot', #threads)",
        "end",
        # init runs in the thread's state: its one connection's one user, for the run.
        "function init(args)",
        "  local k = (slot - 1) % #header_sets + 1",
        f"  req = wrk.format({_lua_str(load.method)}, {_lua_str(load.path)}, "
        "header_sets[k], bodies[k])",
        "end",
        "function request()",
        "  return req",
        "end",
    ]
    if load.delay_ms:
        parts.append(f"function delay() return {int(load.delay_ms)} end")
    if load.count_status:
        parts += [
            "function response(status, headers, body)",
            "  local by = headers['X-Served-By']",
            "  if by then served[by] = (served[by] or 0) + 1 end",
            "  if status < 200 or status > 299 then",
            "    non2xx = non2xx + 1",
            "    codes[status] = (codes[status] or 0) + 1",
            "  end",
            "end",
        ]
    parts += [
        "function done(summary, latency, requests)",
        "  local n = 0",
        "  for _, t in ipairs(threads) do n = n + (t:get('non2xx') or 0) end",
        "  local all, parts = {}, {}",
        "  for _, t in ipairs(threads) do",
        "    for k, v in pairs(t:get('codes') or {}) do all[k] = (all[k] or 0) + v end",
        "  end",
        "  for k, v in pairs(all) do table.insert(parts, string.format('\"%d\": %d', k, v)) end",
        "  local by, by_parts = {}, {}",
        "  for _, t in ipairs(threads) do",
        "    for k, v in pairs(t:get('served') or {}) do by[k] = (by[k] or 0) + v end",
        "  end",
        "  for k, v in pairs(by) do",
        "    table.insert(by_parts, string.format('\"%s\": %d', k, v))",
        "  end",
        "  local e = summary.errors",
        f"  io.write(string.format('{MARK}" + '{"requests": %d, "duration_us": %d, '
        '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
        '"non2xx": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d, '
        '"codes": {%s}, "served": {%s}}\\n\', '
        "summary.requests, summary.duration, e.connect, e.read, e.write, e.status, "
        "e.timeout, n, latency:percentile(50), latency:percentile(90), "
        "latency:percentile(99), latency.max, table.concat(parts, ', '), "
        "table.concat(by_parts, ', ')))",
        "end",
    ]
    return "\n".join(parts) + "\n"


class WrkRun:
    """A started wrk process; :meth:`result` waits for it and parses its output."""

    def __init__(
        self,
        wrk: str,
        url: str,
        load: Load,
        *,
        connections: int,
        duration: float,
        timeout_s: float = 10.0,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="bench-wrk-")
        script = Path(self._dir.name) / "load.lua"
        script.write_text(lua_script(load))
        self.count_status = load.count_status
        cmd = [
            wrk,
            f"-t{connections}",  # one thread per connection: see the module's docstring
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            "-s",
            str(script),
            url + load.path,
        ]
        self._cpu_before = _children_cpu()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> WrkResult:
        out, err = self.proc.communicate()
        cpu = _children_cpu() - self._cpu_before
        self._dir.cleanup()
        line = next((ln for ln in out.splitlines() if ln.startswith(MARK)), None)
        if self.proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({self.proc.returncode}): {err.strip() or out[-500:]}")
        data = json.loads(line[len(MARK) :])
        return WrkResult(
            requests=data["requests"],
            duration_s=data["duration_us"] / 1e6,
            socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
            timeouts=data["timeout"],
            status_errors=data["status"],
            non2xx=data["non2xx"] if self.count_status else None,
            codes={int(k): v for k, v in data["codes"].items()},
            served=data["served"],
            p50_ms=data["p50"] / 1000,
            p90_ms=data["p90"] / 1000,
            p99_ms=data["p99"] / 1000,
            max_ms=data["max"] / 1000,
            wrk_cpu_s=cpu,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._dir.cleanup()


def run(
    wrk: str,
    url: str,
    load: Load,
    *,
    connections: int,
    duration: float,
    timeout_s: float = 10.0,
) -> WrkResult:
    """Run wrk against ``url + load.path`` for ``duration`` seconds and wait."""
    return WrkRun(
        wrk,
        url,
        load,
        connections=connections,
        duration=duration,
        timeout_s=timeout_s,
    ).result()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
