"""The only code that speaks SQL: one part per role (roster, outbox, inbox, reports, lock, purge), the schema and its migrations."""
