"""What the faces read of a pipeline's schemas: output roles, value comparison, the outputs' description."""
