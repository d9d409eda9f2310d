"""Look at an index without a query: status, consistency check, similar passages, duplicates, topics."""
