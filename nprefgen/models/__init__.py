"""nprefgen.models (see DESIGN.md)."""
