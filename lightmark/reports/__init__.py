"""reports stage of lightmark (see DESIGN.md)."""
