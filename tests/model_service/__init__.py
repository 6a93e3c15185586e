"""Tests of the model service: in-process, over HTTP, its micro-batcher and its command line."""
