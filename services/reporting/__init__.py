"""The reporting service (SegmentReportingService)."""
