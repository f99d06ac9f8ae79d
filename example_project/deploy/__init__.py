"""Scripts the deploy workflow runs against AWS (not part of the image)."""
