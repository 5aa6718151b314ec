"""MariaDB storage: connection pool, schema, users and statuses. Knows nothing of HTTP."""
