"""Tests of the whole project: `just up`, faults, the bench, the deploy files, docs, fuzzing, code size."""
