"""Look at an index without a query: status, similar passages, duplicates, topics, a hit's context."""
