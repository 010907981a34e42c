"""The built-in connectors, one package per service, each registered by its own entry point."""
