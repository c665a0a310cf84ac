"""The version of pgstask (``pgstask.__version__``), in a module of its own that imports nothing,
so that the daemon can report it without importing the package's facade (``pgstask/__init__.py``
imports the client, which sits above the runtime)."""

__version__ = "0.1.0"
