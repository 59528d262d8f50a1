"""aidc optimizer package."""
