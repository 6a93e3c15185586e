"""The model service: the only process that loads the pipeline."""
