"""nprefgen.sbi (see DESIGN.md)."""
