"""aidc forecasts package."""
