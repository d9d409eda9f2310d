"""Serving the index to AI agents over the Model Context Protocol."""
