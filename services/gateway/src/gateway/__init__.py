"""The gateway: the public API in front of the model service."""
