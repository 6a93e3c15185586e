"""HTTP plumbing both services use: problems, body checks, docs, the model-service client, pages' policy."""
