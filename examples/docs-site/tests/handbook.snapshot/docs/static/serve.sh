#!/bin/sh
# Serves the built site on http://localhost:8000.
exec mkdocs serve "$@"
