"""Chat page in API mode (`rag ui --api URL`): see ui/api_view.py."""

from api_view import render_page

render_page()
