"""The export service's adapters: its job store, the export directory and its peers."""
