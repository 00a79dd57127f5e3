"""The command-line interface (``prunekit COMMAND ...``)."""
