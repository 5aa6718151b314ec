"""The load test, on Locust: ``locustfile.py`` (scenario, options, reports) and
``checks.py`` (correctness checks and the session-sharing matrix, without Locust).

Run it with ``make loadtest`` or ``make loadtest-ui``; ``docs/LOADTEST.md`` explains it.
"""
