"""Routing: the smart-address grammar (pure) and the resolution of a recipient to a Route."""
