"""Tests of the batch worker: jobs end to end, reports, scores, long rows, the report hand-over."""
