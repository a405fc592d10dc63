"""One typed configuration: the schema, its loading (defaults < preset or file < --set) and the presets."""
