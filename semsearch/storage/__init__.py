"""Keep an index on disk: the SQLite store (the truth), keywords, vectors, layout, lock, faults, check."""
