"""The HTTP API's published OpenAPI document and the server-rendered dashboard (templates, SVG charts)."""
