"""Show results to people and to programs: hits, formats, reports, terminal styles, progress bars."""
