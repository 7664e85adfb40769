"""The Control API relay: framework-free engines (sqrt, interpreter, providers, formats) and the Django shell."""
