"""Answer queries: candidates by meaning and by keyword, fused into ranked hits."""
