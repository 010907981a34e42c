from interlink.hookspecs import hookimpl


@hookimpl
def register_conectors(register):  # type: ignore[no-untyped-def]
    raise AssertionError("never called: the hook name is misspelled")
