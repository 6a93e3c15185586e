"""The batch worker: Celery jobs that run datasets through the model service."""
