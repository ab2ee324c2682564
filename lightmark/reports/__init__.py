"""Records and studies -> pandas tables (CSV / Markdown / LaTeX) and matplotlib plots (docs/architecture.md)."""
