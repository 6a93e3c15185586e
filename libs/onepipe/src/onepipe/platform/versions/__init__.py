"""Versions side by side: the registry (MLflow), what the services say of them, a promotion's evidence."""
