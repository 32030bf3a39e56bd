"""nprefgen: generative modelling, density estimation and SBI in NumPy with hand-written gradients."""

__version__ = "0.1.0"
