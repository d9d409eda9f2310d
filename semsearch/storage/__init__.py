"""Keep an index on disk: the SQLite store (the truth), keyword index, vectors, layout, lock, faults."""
