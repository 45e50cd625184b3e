"""The HTTP layer: FastAPI routes over the records service, and the OpenAPI spec of each form."""
