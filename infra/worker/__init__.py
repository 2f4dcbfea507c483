"""The Worker: its pure Python reference model and the rendering of its JavaScript source."""
