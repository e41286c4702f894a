"""Process-level fault tests: kills, a database that goes away, retries, scale-out."""
