"""Batch jobs: their types, their files under the storage root, and the datasets they read."""
