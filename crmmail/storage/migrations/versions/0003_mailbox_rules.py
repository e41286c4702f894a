"""mailbox rules

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Columns added to tables with rows carry a server default, so existing rows get a value.

    op.create_table(
        "template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("is_html", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_template_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_template_account_id_name")),
    )
    op.create_table(
        "thread",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("counterpart", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailbox.id"],
            name=op.f("fk_thread_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_thread")),
        sa.UniqueConstraint("mailbox_id", "key", name=op.f("uq_thread_mailbox_id_key")),
    )
    op.create_table(
        "email_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["email.id"],
            name=op.f("fk_email_attachment_email_id_email"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_attachment")),
    )
    with op.batch_alter_table("email_attachment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_attachment_email_id"), ["email_id"], unique=False
        )

    with op.batch_alter_table("email", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("counterpart", sa.String(length=320), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("thread_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("deleted_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("purged", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(batch_op.f("ix_email_thread_id"), ["thread_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_email_thread_id_thread"),
            "thread",
            ["thread_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_email_deleted_by_user_account"),
            "user_account",
            ["deleted_by"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("share_with_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("threads", sa.Boolean(), nullable=False, server_default=sa.true())
        )

    with op.batch_alter_table("note", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("content_removed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:

    with op.batch_alter_table("note", schema=None) as batch_op:
        batch_op.drop_column("content_removed")

    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        batch_op.drop_column("threads")
        batch_op.drop_column("share_with_admin")

    with op.batch_alter_table("email", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_email_deleted_by_user_account"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_email_thread_id_thread"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_email_thread_id"))
        batch_op.drop_column("purged")
        batch_op.drop_column("deleted_by")
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("thread_id")
        batch_op.drop_column("counterpart")

    with op.batch_alter_table("email_attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_attachment_email_id"))

    op.drop_table("email_attachment")
    op.drop_table("thread")
    op.drop_table("template")
