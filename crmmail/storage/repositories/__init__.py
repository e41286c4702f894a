"""Repositories: all SQL lives here, one module per aggregate; none of them commits."""
