"""Storage errors the handlers translate into HTTP answers."""


class StorageUnavailable(Exception):
    """MariaDB could not be reached or did not answer in time (answer 503)."""


class EmailTaken(Exception):
    """The unique index on ``user_login.user_email`` refused a second account."""


class UnknownUser(Exception):
    """A row referred to a user that no longer exists."""
