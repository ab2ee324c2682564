"""lightmark: search and benchmark light-weight facial-landmark models."""

__version__ = "0.1.0"
