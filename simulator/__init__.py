"""aidc simulator package."""
