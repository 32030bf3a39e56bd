"""nprefgen.metrics (see DESIGN.md)."""
