"""nprefgen.plots (see DESIGN.md)."""
