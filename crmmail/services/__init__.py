"""Services: the operations the CLI (and later the HTTP API) offer, with their input checks.

Each function takes the caller's session (the boundary owns the transaction) and returns plain
data ready to print as JSON; bad input raises a ``UserInputError`` naming what is wrong.
"""
