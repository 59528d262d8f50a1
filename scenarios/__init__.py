"""aidc scenarios package."""
