"""Tests of the gateway: over HTTP, its OpenAPI contract, security, hostile input, queue, cases, compare."""
