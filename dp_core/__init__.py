"""Dynamic Prompting Lab core: SuperGLUE tasks, frozen backbones, prompt methods, training."""
