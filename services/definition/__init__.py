"""The definition service (SegmentDefinitionService)."""
