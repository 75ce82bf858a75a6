"""The export service's rules: job states, columns and CSV cells (pure: no I/O, no gRPC)."""
