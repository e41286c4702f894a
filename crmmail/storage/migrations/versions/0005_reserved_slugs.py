"""reserved slugs: a slug once used by an account stays that account's

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reserved_slug",
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_reserved_slug_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_reserved_slug")),
    )
    with op.batch_alter_table("reserved_slug", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reserved_slug_account_id"), ["account_id"], unique=False
        )
    # Every account holds its current slug. Slugs given up by renames before this migration
    # are not known: they stay free.
    op.execute(
        "INSERT INTO reserved_slug (slug, account_id, reserved_at)"
        " SELECT slug, id, created_at FROM account"
    )


def downgrade() -> None:
    with op.batch_alter_table("reserved_slug", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reserved_slug_account_id"))
    op.drop_table("reserved_slug")
