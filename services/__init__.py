"""The shared core of vitrine: settings, models, embedder, store, search."""
