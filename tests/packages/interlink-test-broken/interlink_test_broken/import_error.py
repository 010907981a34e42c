import interlink_no_such_dependency  # noqa: F401  (fails at import, as a plugin missing a dependency)
