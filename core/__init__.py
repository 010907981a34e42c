"""Interlink: a plugin-based connector framework (the core library connector authors depend on)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("interlink")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
