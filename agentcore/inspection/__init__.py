"""Looking at runs: queries (runs, events, provenance, usage) and the self-contained HTML view."""
