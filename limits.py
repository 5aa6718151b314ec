"""Every size limit a user or a client meets, in one place.

Validation enforces them, the forms' ``maxlength``/``minlength`` attributes and the
413 message are rendered from them, nginx's ``client_max_body_size`` is rendered from
``MAX_BODY_BYTES`` (``deploy/render-nginx-conf.py``), and the README's table is
checked against them by the unit tests. Standard library only: the nginx renderer
loads this file on servers without the app's dependencies.
"""

MAX_BODY_BYTES = 64 * 1024  # a request body; 413 above (nginx refuses it first)
MAX_NAME = 100  # characters of a user name
MAX_EMAIL = 254  # characters of an e-mail address (RFC 5321's path limit)
MIN_PASSWORD_CHARS = 8  # characters of a new password
MAX_PASSWORD_BYTES = 72  # UTF-8 bytes of a password: what bcrypt reads, never truncated
MAX_STATUS = 1000  # characters of a status
