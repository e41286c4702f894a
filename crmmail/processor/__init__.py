"""Processing: the worker that claims spooled messages and runs them through the pipeline."""
