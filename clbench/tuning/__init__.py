"""Tuning every strategy with the same budget on validation data (`clbench tune`): search spaces
declared beside each method's parameters (`space`), the objective (`objective`), the studies
(`study`) and what they leave behind (`output`)."""
