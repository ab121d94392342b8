"""Training recipes of the zoo's models: one module per model, each with build, train and evaluate."""
