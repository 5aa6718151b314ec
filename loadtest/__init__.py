"""A load test for the app that shows one session served by many processes, correctly.

Run it with ``python -m loadtest --help``; ``docs/LOADTEST.md`` explains the scenario,
the checks and the reports. Modules, one job each:

- :mod:`loadtest.cli` — options, running, reports, exit code;
- :mod:`loadtest.runner` — starts and stops the virtual users, live progress;
- :mod:`loadtest.user` — the scenario of one virtual user;
- :mod:`loadtest.client` — HTTP with a cookie jar per user and new connections over time;
- :mod:`loadtest.checks` — correctness checks against each user's own history;
- :mod:`loadtest.sharing` — which processes served each signed-in user;
- :mod:`loadtest.stats` — latency histograms, per-route counters, time series;
- :mod:`loadtest.verdict` — pass or fail;
- :mod:`loadtest.report_text`, :mod:`loadtest.report_html`, :mod:`loadtest.report_json`,
  :mod:`loadtest.svg` — the reports.
"""

__version__ = "1.0.0"
