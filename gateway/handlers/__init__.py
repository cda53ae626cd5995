"""S3 operation handlers, one module per family; `HANDLERS` maps AWS operation names to them."""
