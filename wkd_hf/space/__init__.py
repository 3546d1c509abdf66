"""A Gradio Space for a student (and its teacher): ``wkd-space`` writes the app folder
(:mod:`wkd_hf.space.writer`), which runs :func:`wkd_hf.space.app.build_demo` (the page)."""
