"""The `segments` command-line client: one module per command group (`cmd_*.py`), one place
for the connection (`connection`: address, API key, TLS), one for output (`output`) and one for
errors and exit codes (`errors`). `app` registers the groups with `services/cli.py`."""
