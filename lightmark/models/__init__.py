"""models stage of lightmark (see DESIGN.md)."""
