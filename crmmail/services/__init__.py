"""Services: the operations every face (the CLI, later the HTTP API) offers, with their checks.

Each function takes the caller's session (the boundary owns the transaction) or the database
(for those that talk to a mail server between transactions), and returns typed results
(``crmmail.services.results``) that each face renders. Bad input raises a ``UserInputError``
saying what is wrong in words no face owns; what to do about it is a ``Hint`` the face words.
Services reach mail servers through ``crmmail.connector.facade`` only.
"""
