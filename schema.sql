-- Schema of the application. It names no database, so it applies to any:
--     mariadb DBNAME < schema.sql
-- It is idempotent (CREATE ... IF NOT EXISTS, ADD COLUMN IF NOT EXISTS) and uses
-- utf8mb4 throughout. Applied to a database made by an older version, it adds what is
-- missing (the server does the same at start-up: storage/schema.py).
-- Table and column names are the original application's; columns beside them are ours.

CREATE TABLE IF NOT EXISTS user_login (
    user_id       INT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- Stored trimmed and lower-cased by the application, so the unique index below
    -- makes e-mail addresses unique regardless of case.
    user_email    VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- A bcrypt hash ($2b$...: 60 characters); room for a future algorithm's longer hash.
    user_password VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_name     VARCHAR(100) NOT NULL,
    created_date  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    -- "Sessions valid after" (ms since the epoch): sessions issued under an older mark
    -- are refused. Advanced by password changes; here, so a Redis restore cannot undo it.
    sessions_valid_after BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id),
    UNIQUE KEY uq_user_login_email (user_email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Migrations: columns added since the table was first created.
ALTER TABLE user_login
    ADD COLUMN IF NOT EXISTS sessions_valid_after BIGINT UNSIGNED NOT NULL DEFAULT 0
    AFTER created_date;

CREATE TABLE IF NOT EXISTS user_status (
    -- Auto-increment id: two statuses posted in the same microsecond still have an order.
    status_id     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id       INT UNSIGNED NOT NULL,
    user_status   VARCHAR(1000) NOT NULL,
    created_date  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (status_id),
    -- "Statuses of one user, newest first" reads this index backwards.
    KEY ix_user_status_user_newest (user_id, status_id),
    CONSTRAINT fk_user_status_user FOREIGN KEY (user_id)
        REFERENCES user_login (user_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
