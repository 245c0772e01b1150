"""Spreadsheet bytes: zip and XML opened as hostile input, cells and dates read fast. Nothing of the project's own above it."""
