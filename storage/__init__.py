"""The app's stores: MariaDB (pool, schema, users, statuses) and its general Redis client.

Knows nothing of HTTP. The sessions' own Redis connection is the session library's.
"""
