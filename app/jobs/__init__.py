"""Background work on a PostgreSQL-backed queue (procrastinate): no extra infrastructure to run."""
