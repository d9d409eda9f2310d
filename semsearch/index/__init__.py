"""Turn folders into stored passages: crawl, extract each format, chunk, and the indexer that drives them."""
