"""The models, one concept per module; importing this package registers them all on ``Base``."""

from crmmail.storage.models.account import Account, ReservedSlug, User, UserRole
from crmmail.storage.models.crm import (
    Contact,
    ContactEmail,
    Customer,
    Lead,
    LeadStatus,
    customer_contact,
    lead_contact,
)
from crmmail.storage.models.email import Email, EmailAttachment, Thread, email_contact
from crmmail.storage.models.inbound import AppliedAction, InboundMessage, InboundStatus
from crmmail.storage.models.mailbox import (
    FolderRole,
    Mailbox,
    MailboxCredential,
    MailboxFolderState,
    MailboxKind,
    MailboxStatus,
)
from crmmail.storage.models.note import Attachment, EntityType, Note
from crmmail.storage.models.template import Template

__all__ = [
    "Account",
    "AppliedAction",
    "Attachment",
    "Contact",
    "ContactEmail",
    "Customer",
    "Email",
    "EmailAttachment",
    "EntityType",
    "FolderRole",
    "InboundMessage",
    "InboundStatus",
    "Lead",
    "LeadStatus",
    "Mailbox",
    "MailboxCredential",
    "MailboxFolderState",
    "MailboxKind",
    "MailboxStatus",
    "Note",
    "ReservedSlug",
    "Template",
    "Thread",
    "User",
    "UserRole",
    "customer_contact",
    "email_contact",
    "lead_contact",
]
