"""The patient portal: server-rendered pages and the JSON API under /api."""
