"""Gradio UI of Dynamic Prompting Lab. Holds only UI; every method lives in dp_core."""
