"""The evaluator service (SegmentEvaluatorService)."""
