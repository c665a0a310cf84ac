"""pgstask inside other Python frameworks: ``asgi`` (any ASGI app: Starlette, FastAPI) and
``fastapi`` (its dependency). Nothing below this package imports it, and a user who does not
import it pays nothing for it."""
