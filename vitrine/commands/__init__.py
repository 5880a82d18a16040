"""One module per group of CLI commands; `vitrine.cli` puts them together."""
