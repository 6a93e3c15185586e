"""Tests of the pipelines: the example (review-triage), a scaffolded one, every face's parity."""
