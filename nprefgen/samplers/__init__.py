"""nprefgen.samplers (see DESIGN.md)."""
