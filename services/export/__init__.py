"""The export service (SegmentExportService)."""
