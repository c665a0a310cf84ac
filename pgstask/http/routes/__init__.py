"""The routes of the app, one module per resource."""
