"""The example pipeline: review triage on the Rotten Tomatoes snippets."""
