"""The reporting service's use cases: the daily job, back-fills and the reports."""
