"""Results tables and figures."""
