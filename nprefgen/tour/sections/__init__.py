"""Tour sections, one module each (see nprefgen.tour)."""
