"""landmarks stage of lightmark (see DESIGN.md)."""
