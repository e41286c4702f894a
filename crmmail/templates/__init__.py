"""Mail templates: rendering CRM fields into a subject and a body, safely."""
