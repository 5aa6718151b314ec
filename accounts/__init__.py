"""Accounts: password hashing, input validation and login throttling. No HTTP here."""
