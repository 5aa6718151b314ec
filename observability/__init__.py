"""Operating the app: Prometheus metrics (:mod:`observability.metrics`) and structured logs
(:mod:`observability.logs`), across forked workers."""
