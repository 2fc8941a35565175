"""Annotation quality: the instance model of the inspection (more modules arrive with h-quality)."""
