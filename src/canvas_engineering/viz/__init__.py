"""Faces: every picture (matplotlib, imported when drawn) and text table. Thin: they read the
layers above and hold no logic of their own."""
