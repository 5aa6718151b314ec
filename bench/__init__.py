"""Benchmarks of the app: figures, not timed tests (``make bench`` / ``python -m bench``).

One command, one run, on one machine, with the same number of processes for every
server, the systems alternated round by round, and wrk as the load generator:

1. session-layer cost: signed-in ``GET /whoami`` and ``GET /home`` (JSON) as a ratio
   to a bare Tornado hello-world served the same way (:mod:`bench.hello_server`), and a
   run with many connections that must produce no errors (:mod:`bench.session_cost`);
2. Redis round trips (``MONITOR``) and MariaDB statements per route
   (:mod:`bench.roundtrips`);
3. the event loop under a login storm, and bcrypt's ceiling (:mod:`bench.storm`);
4. resident memory per worker (:mod:`bench.memory`);
5. the same through nginx, configured as deployed (:mod:`bench.via_nginx`).

The tables are printed and written to ``docs/PERFORMANCE.md`` (:mod:`bench.report`).
"""
