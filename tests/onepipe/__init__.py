"""Tests of the onepipe library: the contract, previews and traces, datasets, settings, the client."""
