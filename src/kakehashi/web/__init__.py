"""Server-rendered pages (Jinja2) with light JS; assets are local files, never a CDN."""
