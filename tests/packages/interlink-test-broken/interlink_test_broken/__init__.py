"""Entry points that each break in one way; none may take the server down."""
