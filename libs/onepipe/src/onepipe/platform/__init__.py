"""What the services share (HTTP plumbing, jobs, schemas, cases, settings); a pipeline never imports it."""
