"""Rendering what the viewer shows: deep-zoom overlay tiles, colour maps, legends, masks."""
