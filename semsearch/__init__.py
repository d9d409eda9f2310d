"""semsearch: local semantic search for your files, from the command line."""

__version__ = "0.1.0"
