"""The review page's routes, one module per group of pages."""
