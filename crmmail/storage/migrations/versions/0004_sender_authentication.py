"""sender authentication and the loop guard

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Columns added to tables with rows carry a server default, so existing rows get a value.

    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dmarc_policy", sa.String(length=16), nullable=False, server_default="tag")
        )

    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_results", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("auth_disposition", sa.String(length=16), nullable=True))

    for table in ("contact", "lead"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("source_sender", sa.String(length=320), nullable=True))
            batch_op.create_index(
                f"ix_{table}_source_sender",
                ["account_id", "source_sender", "created_at"],
                unique=False,
            )


def downgrade() -> None:
    for table in ("lead", "contact"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_source_sender")
            batch_op.drop_column("source_sender")

    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.drop_column("auth_disposition")
        batch_op.drop_column("auth_results")

    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("dmarc_policy")
