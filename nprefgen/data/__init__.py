"""nprefgen.data (see DESIGN.md)."""
