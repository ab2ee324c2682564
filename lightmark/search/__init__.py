"""search stage of lightmark (see DESIGN.md)."""
