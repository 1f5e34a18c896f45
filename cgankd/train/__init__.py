"""Training of teachers and students: one trainer, one recipe format, resumable runs."""
