"""Consistency Studio's web UI (Gradio). The engine is `editing`; this package holds no image math."""
