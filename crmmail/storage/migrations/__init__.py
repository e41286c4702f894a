"""Alembic migrations of the crmmail schema (run by ``crmmail init``)."""
