"""The one typed configuration tree and its loader."""
