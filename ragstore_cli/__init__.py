"""ragstore: the operator's tool for the storage behind LightRAG / RAG-Anything."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("ragstore")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
