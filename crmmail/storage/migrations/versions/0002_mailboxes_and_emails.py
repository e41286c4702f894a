"""mailboxes and emails

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "mailbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("imap_host", sa.String(length=253), nullable=False),
        sa.Column("imap_port", sa.Integer(), nullable=False),
        sa.Column("imap_security", sa.String(length=16), nullable=False),
        sa.Column("smtp_host", sa.String(length=253), nullable=False),
        sa.Column("smtp_port", sa.Integer(), nullable=False),
        sa.Column("smtp_security", sa.String(length=16), nullable=False),
        sa.Column("sent_folder", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_token", sa.String(length=32), nullable=True),
        sa.Column("sync_lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_mailbox_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f("fk_mailbox_owner_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox")),
        sa.UniqueConstraint("account_id", "email", name=op.f("uq_mailbox_account_id_email")),
    )
    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailbox_next_sync_at"), ["next_sync_at"], unique=False)

    op.create_table(
        "email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=16), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("message_key", sa.String(length=300), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("from_addr", sa.Text(), nullable=False),
        sa.Column("to_addrs", sa.Text(), nullable=False),
        sa.Column("cc_addrs", sa.Text(), nullable=False),
        sa.Column("date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("deleted_on_server", sa.Boolean(), nullable=False),
        sa.Column("quarantined", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_email_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailbox.id"],
            name=op.f("fk_email_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email")),
        sa.UniqueConstraint(
            "mailbox_id",
            "folder",
            "message_key",
            name=op.f("uq_email_mailbox_id_folder_message_key"),
        ),
    )
    with op.batch_alter_table("email", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_mailbox_id"),
            ["mailbox_id", "folder", "uidvalidity", "uid"],
            unique=False,
        )

    op.create_table(
        "mailbox_credential",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailbox.id"],
            name=op.f("fk_mailbox_credential_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_mailbox_credential")),
    )
    op.create_table(
        "mailbox_folder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("uidnext", sa.BigInteger(), nullable=True),
        sa.Column("messages", sa.Integer(), nullable=True),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailbox.id"],
            name=op.f("fk_mailbox_folder_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_folder")),
        sa.UniqueConstraint("mailbox_id", "role", name=op.f("uq_mailbox_folder_mailbox_id_role")),
    )
    op.create_table(
        "email_contact",
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_email_contact_contact_id_contact"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["email.id"],
            name=op.f("fk_email_contact_email_id_email"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("email_id", "contact_id", name=op.f("pk_email_contact")),
    )
    with op.batch_alter_table("email_contact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_contact_contact_id"), ["contact_id"], unique=False
        )

    with op.batch_alter_table("applied_action", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_id", sa.Integer(), nullable=True))
        batch_op.alter_column("inbound_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_applied_action_email_id_email"),
            "email",
            ["email_id"],
            ["id"],
            ondelete="CASCADE",
        )

    with op.batch_alter_table("note", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("message_key", sa.String(length=300), nullable=True))
        batch_op.create_index(
            "ix_note_account_id_message_key", ["account_id", "message_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_note_email_id"), ["email_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_note_email_id_email"), "email", ["email_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:

    with op.batch_alter_table("note", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_note_email_id_email"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_note_email_id"))
        batch_op.drop_index("ix_note_account_id_message_key")
        batch_op.drop_column("message_key")
        batch_op.drop_column("email_id")

    with op.batch_alter_table("applied_action", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_applied_action_email_id_email"), type_="foreignkey")
        batch_op.alter_column("inbound_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("email_id")

    with op.batch_alter_table("email_contact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_contact_contact_id"))

    op.drop_table("email_contact")
    op.drop_table("mailbox_folder")
    op.drop_table("mailbox_credential")
    with op.batch_alter_table("email", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_mailbox_id"))

    op.drop_table("email")
    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailbox_next_sync_at"))

    op.drop_table("mailbox")
